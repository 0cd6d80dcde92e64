"""Today's Ollama (v0.33) through the library: cloud models, every row of the error table,
think levels, the 60 ms progress ticker. Driven through the real ollama client against the
fake server, which answers as server/routes.go, cloud_proxy.go and download.go do."""

from __future__ import annotations

import ssl

import httpx
import ollama
import pytest

import contextpilot as cp
from contextpilot import _client
from tests.fake_ollama import BUSY, CLOUD_DISABLED, RUNNER_STOPPED, SIGNIN_URL, FakeModel

HI = [{"role": "user", "content": "hi there"}]
GPT_OSS = FakeModel(name="gpt-oss:120b", family="gptoss", parameter_size="116.8B",
                    quantization="MXFP4", capabilities=["completion", "tools", "thinking"])


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Busy retries without waiting: the delays are the table's knob."""
    monkeypatch.setattr(_client, "BUSY_DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture
def srv(fake_ollama):
    fake_ollama.add_cloud(GPT_OSS)
    return fake_ollama


def answer(srv, model="llama3.2", **kw):
    events = list(cp.chat_stream(model, HI, host=srv.url, **kw))
    return "".join(e.text for e in events if isinstance(e, cp.ContentDelta)), events


def partial_then_error(srv, model="llama3.2", **kw):
    got = []
    with pytest.raises(cp.ContextPilotError) as info:
        for e in cp.chat_stream(model, HI, host=srv.url, **kw):
            got.append(e)
    return "".join(e.text for e in got if isinstance(e, cp.ContentDelta)), info.value


# --------------------------------------------------------------------------- cloud models

def test_a_cloud_chat_signed_in_goes_through_the_local_server(srv):
    text, events = answer(srv, "gpt-oss:120b:cloud")
    assert text == "You said: hi there"
    assert srv.chat_requests[-1]["model"] == "gpt-oss:120b-cloud"  # what Ollama's pull writes
    assert srv.pull_requests == {}  # never downloaded
    assert not any(isinstance(e, cp.PullProgress) for e in events)


def test_a_cloud_chat_signed_out_says_to_run_ollama_signin_with_the_link(srv):
    srv.signed_in = False
    with pytest.raises(cp.CloudSignInRequired) as info:
        answer(srv, "gpt-oss:120b-cloud")
    msg = str(info.value)
    assert "`ollama signin`" in msg and SIGNIN_URL in msg and info.value.signin_url == SIGNIN_URL
    assert srv.pull_requests == {}
    srv.signin_url = ""  # the helper could not make a link: still the command
    with pytest.raises(cp.CloudSignInRequired) as info:
        answer(srv, "gpt-oss:120b-cloud")
    assert "`ollama signin`" in str(info.value) and "https://" not in str(info.value)


def test_cloud_switched_off_says_so(srv):
    srv.cloud_disabled = True
    with pytest.raises(cp.CloudDisabled) as info:
        answer(srv, "gpt-oss:120b:cloud")
    assert "switched off" in str(info.value) and CLOUD_DISABLED in str(info.value)
    assert cp.server_status(srv.url).cloud is False


def test_an_unknown_cloud_model_is_not_a_pull_trigger(srv):
    with pytest.raises(cp.ModelNotFound) as info:
        answer(srv, "nosuch:cloud")
    assert info.value.cloud and "ollama.com" in str(info.value)
    assert srv.pull_requests == {}


def test_status_says_cloud_is_available(srv):
    status = cp.server_status(srv.url)
    assert status.reachable and status.version == "0.33.0" and status.cloud is True


def test_list_reads_the_fields_the_client_drops(srv):
    srv.add_cloud(FakeModel(name="gpt-oss:20b", family="gptoss", capabilities=["completion"]))
    list(cp.pull_model("gpt-oss:20b-cloud", srv.url))  # writes the stub, as Ollama does
    by_name = {m.name: m for m in cp.list_models(srv.url)}
    stub = by_name["gpt-oss:20b-cloud"]
    assert stub.is_cloud and stub.remote_host == "https://ollama.com:443"
    assert stub.remote_model == "gpt-oss:20b"
    local = by_name["llama3.2:latest"]
    assert not local.is_cloud and local.capabilities == ("completion", "tools")
    assert local.context_length == 131072 and local.modified_at.tzinfo is not None


def test_local_suffix_finds_the_installed_model_without_a_download(srv):
    text, events = answer(srv, "llama3.2:local")
    assert text == "You said: hi there" and srv.pull_requests == {}
    assert srv.chat_requests[-1]["model"] == "llama3.2:latest"


# --------------------------------------------------------------------------- the error table

def test_busy_then_success_is_retried_quietly(srv):
    srv.faults.busy = 2
    text, _ = answer(srv)
    assert text == "You said: hi there" and len(srv.chat_requests) == 3


def test_busy_that_persists_says_what_to_do(srv):
    srv.faults.busy = 100
    with pytest.raises(cp.OllamaBusy) as info:
        answer(srv)
    assert str(info.value).startswith("Ollama is busy") and BUSY in str(info.value)
    assert "OLLAMA_MAX_QUEUE" in str(info.value)
    assert len(srv.chat_requests) == 4  # the first try and 3 retries, no more


def test_busy_quick_call_is_retried_too(srv, monkeypatch):
    srv.faults.busy = 1
    assert cp.load_model("llama3.2", host=srv.url) is None


@pytest.mark.parametrize("reason, oom", [
    (RUNNER_STOPPED, False),
    ("unable to load full model on GPU", True),
    ("llama-server reported out-of-memory during startup: cudaMalloc failed", True),
    ("model requires more system memory (5.0 GiB) than is available (2.1 GiB)", True),
])
def test_a_runner_that_dies_before_any_token_suggests_a_smaller_model(srv, reason, oom):
    srv.faults.chat_fail = (500, reason)
    with pytest.raises(cp.ModelCrashed) as info:
        answer(srv)
    msg = str(info.value)
    assert info.value.out_of_memory is oom and "smaller model" in msg and "num_ctx" in msg
    assert "Traceback" not in msg and not info.value.mid_answer


def test_a_runner_that_dies_after_tokens_keeps_the_partial(srv):
    srv.faults.chat_error_after = (2, "an error was encountered while running the model: "
                                      "CUDA error: an illegal memory access")
    text, error = partial_then_error(srv)
    assert text == "You said:"  # the words already sent stay
    assert isinstance(error, cp.ModelCrashed) and error.mid_answer
    assert "what it wrote so far is kept" in str(error)


def test_499_says_send_it_again(srv):
    srv.faults.chat_fail = (499, "request canceled")
    with pytest.raises(cp.OllamaError) as info:
        answer(srv)
    assert "cancelled the request" in str(info.value) and info.value.status_code == 499


def test_not_found_code_line_on_pull_is_model_not_found(srv):
    srv.faults.pull_error_line = {"code": "not_found", "error": 'model "mistral" not found'}
    with pytest.raises(cp.ModelNotFound) as info:
        list(cp.pull_model("mistral", srv.url))
    assert "Try again" not in str(info.value)


def test_a_request_the_client_refuses_is_invalid_request(srv):
    with pytest.raises(cp.InvalidRequest) as info:
        list(cp.chat_stream("llama3.2", [{"role": "user", "content": 5}], host=srv.url))
    assert "could not be sent" in str(info.value)
    assert srv.chat_requests == []


def test_tls_to_a_plain_server_is_one_readable_message(srv):
    https = srv.url.replace("http://", "https://")
    with pytest.raises(cp.OllamaUnavailable) as info:
        cp.list_models(https)
    assert "TLS" in str(info.value) and "http://" in str(info.value)


def test_proxy_and_tls_rows_of_the_table():
    ctx = _client.Context("http://gpu-box:11434")
    proxy = _client.map_error(httpx.ProxyError("407 Proxy Authentication Required"), ctx)
    assert isinstance(proxy, cp.OllamaUnavailable) and "NO_PROXY" in str(proxy)
    tls = httpx.ConnectError("handshake failed")
    tls.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    mapped = _client.map_error(tls, ctx)
    assert isinstance(mapped, cp.OllamaUnavailable) and "certificate" in str(mapped)


def test_pull_failed_kind_is_set_where_it_is_made(srv):
    srv.faults.disk_full()
    with pytest.raises(cp.PullFailed) as info:
        list(cp.pull_model("mistral", srv.url))
    assert info.value.kind == "disk full"
    assert cp.PullFailed("m", "odd words", kind="stalled").kind == "stalled"
    assert cp.PullFailed("m", "no space left on device").kind == "disk full"  # None: derived


def test_the_table_never_lets_a_raw_error_through():
    ctx = _client.Context("http://h:1", "chat", "m")
    for exc in (ollama.ResponseError("boom", 502), httpx.ReadError("x"), RuntimeError("bug"),
                ValueError("v"), httpx.DecodingError("d")):
        assert isinstance(_client.map_error(exc, ctx), cp.ContextPilotError)


# --------------------------------------------------------------------------- names, insecure

def test_plain_http_registry_needs_insecure(srv):
    name = "http://127.0.0.1:5000/me/tiny"
    with pytest.raises(cp.InvalidRequest) as info:
        list(cp.pull_model(name, srv.url))
    assert "insecure=True" in str(info.value) and "--insecure" in str(info.value)
    assert srv.pull_requests == {}
    with pytest.raises(cp.ModelNotFound):  # sent, with insecure: the fake has no such model
        list(cp.pull_model(name, srv.url, insecure=True))
    body = next(b for m, p, b in srv.requests if p == "/api/pull")
    assert body["insecure"] is True and body["model"] == "http://127.0.0.1:5000/me/tiny:latest"


def test_conflicting_sources_never_reach_ollama(srv):
    with pytest.raises(cp.InvalidModelName) as info:
        answer(srv, "qwen3:cloud:local")
    assert "use either :local or :cloud, not both" in str(info.value)
    assert srv.chat_requests == []


# --------------------------------------------------------------------------- think levels

@pytest.mark.parametrize("think", ["low", "medium", "high", "max", True, False])
def test_think_levels_reach_ollama_as_sent(srv, think):
    answer(srv, "gpt-oss:120b:cloud", think=think)
    assert srv.chat_requests[-1]["think"] == think


@pytest.mark.parametrize("bad", ["hard", "", 1, "HIGH!", ["high"]])
def test_other_think_values_are_refused_before_sending(srv, bad):
    with pytest.raises(cp.InvalidRequest):
        answer(srv, "qwen3:0.6b", think=bad)
    assert srv.chat_requests == []


def test_how_long_the_model_thought_is_measured_with_the_given_clock(srv):
    ticks = iter(range(0, 1000, 2))  # every look at the clock: 2 s later
    _, events = answer(srv, "qwen3:0.6b", clock=lambda: float(next(ticks)))
    thoughts = [e for e in events if isinstance(e, cp.ThinkingDelta)]
    done = events[-1]
    assert thoughts[0].elapsed == 0.0 and thoughts[-1].elapsed > 0
    assert done.thinking_seconds == thoughts[-1].elapsed + 2  # to the first answer word
    _, plain = answer(srv, "llama3.2")
    assert plain[-1].thinking_seconds is None


# --------------------------------------------------------------------------- progress cadence

def ticker(srv, tick_bytes=700_000, repeats=2):
    srv.ticker, srv.tick, srv.tick_bytes, srv.tick_repeats = True, 0.001, tick_bytes, repeats


def test_the_fake_ticks_like_download_go(srv):
    ticker(srv)
    raw = list(ollama.Client(host=srv.url).pull("mistral", stream=True))
    weights = [e for e in raw if e.total == 4_000_000]
    assert weights and max(e.completed or 0 for e in weights) < 4_000_000  # no final tick
    assert len(weights) == 2 * len({e.completed for e in weights})  # unchanged repeats
    assert not [e for e in raw if e.total in (20_000, 700)]  # small layers: nothing
    assert [e.status for e in raw][-3:] == ["verifying sha256 digest", "writing manifest",
                                            "success"]


def test_a_pull_at_the_real_cadence_rises_monotonically_to_exactly_100(srv):
    ticker(srv)
    values = list(cp.pull_model("mistral", srv.url))
    fractions = [v.fraction for v in values if v.fraction is not None]
    assert fractions == sorted(fractions)
    assert all(f < 1.0 for f in fractions[:-1]) and fractions[-1] == 1.0 and values[-1].done
    # the layers Ollama announced; the small ones finished inside one tick and never did
    assert values[-1].completed == values[-1].total == 4_000_000
    assert values[-1].resumed_bytes == 0


def test_a_layer_shared_with_another_model_is_not_called_resumed(srv):
    ticker(srv)
    srv.add_remote(FakeModel(name="mistral:7b", layers=[4_000_000, 20_000, 700],
                             blobs_of="mistral:latest"))
    list(cp.pull_model("mistral", srv.url))
    values = list(cp.pull_model("mistral:7b", srv.url))  # every blob already on disk
    assert values[-1].done and values[-1].resumed_bytes == 0
    assert all(v.completed == v.total for v in values if v.step == "download")


def test_removing_unused_layers_only_on_a_re_pull_that_replaced_blobs(srv):
    values = list(cp.pull_model("llama3.2", srv.url))  # up to date: nothing removed
    assert "removing unused layers" not in [v.status for v in values]
    srv.add_remote(FakeModel(name="llama3.2:latest", layers=[3_000_000, 12_000, 500],
                             blobs_of="llama3.2:v2"))
    values = list(cp.pull_model("llama3.2", srv.url))
    steps = [v.status for v in values]
    assert steps[-2:] == ["removing unused layers", "success"]
    from contextpilot.ui import render
    assert render.step_words(values[-2]) == "Removing unused layers"


def test_the_mlx_shape_at_the_ticker(srv):
    ticker(srv, tick_bytes=1_000_000, repeats=1)
    srv.faults.safetensors = True
    values = list(cp.pull_model("mistral", srv.url))
    assert {v.status for v in values if v.step == "download"} == {"pulling model"}
    assert values[-1].fraction == 1.0 and values[-1].completed == values[-1].total


def test_the_ticker_defaults_to_ollamas_60_ms(srv):
    srv.ticker, srv.tick_bytes = True, 1_500_000  # a few real 60 ms ticks
    assert srv.tick == 0.06
    values = list(cp.pull_model("mistral", srv.url))
    percents = [round(v.fraction * 100) for v in values if v.fraction is not None]
    assert percents == sorted(percents) and percents[-1] == 100 and values[-1].done


def test_an_older_server_without_api_status_leaves_cloud_unknown(srv):
    srv.has_status = False
    status = cp.server_status(srv.url)
    assert status.reachable and status.cloud is None and status.error == ""
    from contextpilot.ui import render_status
    assert "cloud models" not in render_status.status_html(status)


def test_401_from_ollama_com_directly_asks_for_an_api_key():
    exc = ollama.ResponseError('{"error": "unauthorized"}', 401)
    mapped = _client.map_error(exc, _client.Context("https://ollama.com:443", "chat", "gpt-oss:120b"))
    assert isinstance(mapped, cp.CloudSignInRequired) and "OLLAMA_API_KEY" in str(mapped)
    assert "ollama signin" not in str(mapped)

"""Proves tests/fake_ollama.py speaks Ollama's protocol, using the real ollama client."""
import json
import re
import threading
import time

import httpx
import ollama
import pytest

from tests.fake_ollama import FakeModel, FakeOllama

BIG = [300_000, 1_000, 500]


@pytest.fixture
def srv():
    with FakeOllama() as s:
        s.add_installed(FakeModel(name="llama3.2:latest", capabilities=["completion", "tools"]))
        s.add_installed(FakeModel(name="qwen3:0.6b", thinking=True, family="qwen3"))
        s.add_remote(FakeModel(name="gemma3:1b", layers=BIG, family="gemma3"))
        yield s


@pytest.fixture
def client(srv):
    return ollama.Client(host=srv.url)


def test_root_version_list(srv, client):
    r = httpx.get(srv.url + "/")
    assert r.text == "Ollama is running" and r.status_code == 200
    assert httpx.head(srv.url + "/").status_code == 200
    assert httpx.get(srv.url + "/api/version").json()["version"].startswith("0.33")
    names = {m.model for m in client.list().models}
    assert names == {"llama3.2:latest", "qwen3:0.6b"}
    assert sorted(srv.installed_names()) == sorted(names)
    assert httpx.get(srv.url + "/api/nope").status_code == 404


def test_pull_sequence(srv, client):
    events = list(client.pull("gemma3:1b", stream=True))
    statuses = [e.status for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer = [e for e in events if e.digest]
    first = layer[0]
    assert first.status == f"pulling {first.digest[7:19]}" and first.total == 300_000
    assert first.completed == 64_000  # the first tick already brought bytes
    # no final completed == total tick; the 1,000 and 500 byte layers finish within a tick
    assert {e.total for e in layer} == {300_000} and layer[-1].completed < 300_000
    assert "gemma3:1b" in srv.installed_names()
    assert srv.pull_requests["gemma3:1b"] == 1 and srv.partial_bytes("gemma3:1b") == 0
    # already installed: every layer reported complete at once
    again = [e for e in client.pull("gemma3:1b", stream=True) if e.digest]
    assert len(again) == 3 and all(e.completed == e.total for e in again)


def test_pull_non_stream_and_invalid_name(srv, client):
    assert client.pull("gemma3:1b").status == "success"
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("bad name!")
    assert e.value.status_code == 400 and e.value.error == "invalid model name"
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("nope:1b")  # stream:false -> 500 with the error
    assert e.value.status_code == 500


def test_pull_unknown_model_errors_mid_stream(srv, client):
    seen = []
    with pytest.raises(ollama.ResponseError) as e:
        for p in client.pull("doesnotexist", stream=True):
            seen.append(p.status)
    assert seen == ["pulling manifest"]
    assert "pull model manifest: file does not exist" in str(e.value)


def test_chat_stream_and_thinking(srv, client):
    parts = list(client.chat("llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(p.message.content for p in parts) == "You said: hi"
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count
    think = list(client.chat("qwen3:0.6b", messages=[{"role": "user", "content": "x"}], stream=True))
    assert "".join(p.message.thinking or "" for p in think) == "Thinking about: x"
    first_content = next(i for i, p in enumerate(think) if p.message.content)
    assert all(not p.message.content for p in think[:first_content])
    off = client.chat("qwen3:0.6b", messages=[{"role": "user", "content": "x"}], think=False)
    assert off.message.thinking is None and off.message.content == "You said: x"
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("llama3.2", messages=[{"role": "user", "content": "x"}], think=True)
    assert e.value.status_code == 400 and e.value.error == '"llama3.2" does not support thinking'
    img = client.chat("llama3.2", messages=[{"role": "user", "content": "see", "images": [b"\x89PNG"]}])
    assert img.message.content == "You said: see"
    assert srv.chat_requests[-1]["messages"][0]["images"] == ["iVBORw=="]


def test_chat_missing_model_404_and_race(srv, client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("ghost", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404 and e.value.error == "model 'ghost' not found"
    srv.faults.remove_before_chat = True
    with pytest.raises(ollama.ResponseError) as e:
        list(client.chat("llama3.2", messages=[{"role": "user", "content": "x"}], stream=True))
    assert e.value.status_code == 404 and "try pulling it first" in e.value.error
    assert "llama3.2:latest" not in srv.installed_names()


def test_show_ps_delete_generate(srv, client):
    s = client.show("llama3.2")
    assert s.capabilities == ["completion", "tools"] and s.modelinfo["llama.context_length"] == 131072
    assert s.details.family == "llama"
    assert client.ps().models == []
    r = client.generate("llama3.2", prompt="")
    assert r.done_reason == "load" and r.response == ""
    assert [m.name for m in client.ps().models] == ["llama3.2:latest"]
    assert client.generate("llama3.2", prompt="", keep_alive=0).done_reason == "unload"
    assert client.ps().models == []
    assert client.generate("llama3.2", prompt="yo").response == "You said: yo"
    client.delete("llama3.2")
    assert "llama3.2:latest" not in srv.installed_names()
    with pytest.raises(ollama.ResponseError) as e:
        client.delete("llama3.2")
    assert e.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as e:
        client.show("llama3.2")
    assert e.value.status_code == 404 and e.value.error == "model 'llama3.2' not found"


def test_refused_then_back_on_same_port(srv, client):
    url = srv.url
    srv.faults.refuse = True
    with pytest.raises(httpx.ConnectError):
        list(client.pull("gemma3:1b", stream=True))
    with pytest.raises(ConnectionError):  # ollama wraps non-streamed connect errors
        client.list()
    srv.faults.refuse = False
    assert srv.url == url and client.list().models


def test_drop_mid_pull_then_resume(srv, client):
    srv.chunk_size = 10_000
    srv.faults.drop_pull_after = 50_000
    seen = []
    with pytest.raises(httpx.HTTPError):
        for p in client.pull("gemma3:1b", stream=True):
            seen.append(p.completed)
    assert max(c or 0 for c in seen) == 50_000
    assert srv.partial_bytes("gemma3:1b") == 50_000
    assert "gemma3:1b" not in srv.installed_names()
    srv.faults.drop_pull_after = None
    resumed = [p for p in client.pull("gemma3:1b", stream=True) if p.digest]
    assert resumed[0].completed == 60_000  # the first tick is already past the partial
    assert "gemma3:1b" in srv.installed_names() and srv.partial_bytes("gemma3:1b") == 0
    assert srv.pull_requests["gemma3:1b"] == 2


def test_stall_notices_client_disconnect(srv):
    srv.faults.stall_pull_after = 64_000
    with httpx.Client(base_url=srv.url, timeout=5) as h:
        with h.stream("POST", "/api/pull", json={"model": "gemma3:1b"}) as r:
            lines = r.iter_lines()
            while '"completed":64000' not in next(lines):
                pass
            assert srv.open_streams == 1
    assert srv.disconnected.wait(2)
    assert srv.disconnects == 1
    deadline = time.time() + 2
    while srv.open_streams and time.time() < deadline:
        time.sleep(0.02)
    assert srv.open_streams == 0


def test_stall_repeat_and_release(srv, client):
    srv.faults.stall_pull_after = 64_000
    srv.faults.stall_repeat = True
    threading.Timer(0.3, srv.release).start()
    events = list(client.pull("gemma3:1b", stream=True))
    repeats = [e for e in events if e.completed == 64_000]
    assert len(repeats) >= 3 and events[-1].status == "success"


def test_pull_error_regress_no_success_safetensors(srv, client):
    srv.faults.disk_full()
    with pytest.raises(ollama.ResponseError) as e:
        list(client.pull("gemma3:1b", stream=True))
    assert "no space left on device" in e.value.error and "-partial" in e.value.error
    srv.faults.pull_error = None
    srv.faults.regress = True
    srv.faults.end_without_success = True
    events = list(client.pull("gemma3:1b", stream=True))
    done = [e.completed or 0 for e in events if e.total == 300_000]
    assert any(b < a for a, b in zip(done, done[1:]))
    assert events[-1].status == "writing manifest"
    client.delete("gemma3:1b")
    srv.faults.reset()
    srv.faults.safetensors = True
    events = list(client.pull("gemma3:1b", stream=True))
    agg = [e for e in events if e.status == "pulling model"]
    assert agg and all(e.digest == "sha256:model" and e.total == sum(BIG) for e in agg)
    assert [e.status for e in events][-2:] == ["writing manifest", "success"]


def test_drop_chat_and_first_token_delay(srv, client):
    srv.faults.drop_chat_after = 1
    got = []
    with pytest.raises(httpx.HTTPError):
        for p in client.chat("llama3.2", messages=[{"role": "user", "content": "a b c"}], stream=True):
            got.append(p.message.content)
    assert got == ["You"]
    srv.faults.drop_chat_after = None
    srv.faults.chat_first_token_delay = 0.2
    t = time.monotonic()
    client.chat("llama3.2", messages=[{"role": "user", "content": "a"}])
    assert time.monotonic() - t >= 0.2


def test_many_concurrent_streams(srv):
    srv.event_delay = 0.01
    results = []

    def run():
        c = ollama.Client(host=srv.url)
        results.append(list(c.pull("gemma3:1b", stream=True))[-1].status)

    threads = [threading.Thread(target=run) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["success"] * 30 and srv.pull_requests["gemma3:1b"] == 30


def test_stop_closes_open_streams(srv):
    srv.faults.stall_pull_after = 0
    errors = []

    def run():
        try:
            list(ollama.Client(host=srv.url).pull("gemma3:1b", stream=True))
        except Exception as e:  # noqa: BLE001 - we only want to see that it ended
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 2
    while not srv.open_streams and time.time() < deadline:
        time.sleep(0.01)
    srv.stop()
    t.join(2)
    assert not t.is_alive() and errors


def test_todays_shapes(srv, client):
    """Shapes of v0.33 (server/routes.go, api/types.go): each checked against the source."""
    assert httpx.get(srv.url + "/api/version").json() == {"version": "0.33.0"}
    assert httpx.get(srv.url + "/api/status").json() == {"cloud": {"disabled": False,
                                                                   "source": "none"}}
    tags = httpx.get(srv.url + "/api/tags").json()["models"]
    llama = next(m for m in tags if m["name"] == "llama3.2:latest")
    assert llama["capabilities"] == ["completion", "tools"]
    assert llama["details"]["context_length"] == 131072
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", llama["modified_at"])
    assert "remote_host" not in llama  # omitempty
    with pytest.raises(ollama.ResponseError) as e:
        client.show("ghost")
    assert e.value.status_code == 404 and e.value.error == "model 'ghost' not found"  # as sent
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("llama3.2@sha256:" + "a" * 64)
    assert e.value.status_code == 400 and e.value.error == "invalid model name"
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("qwen3:cloud:local", messages=[])
    assert e.value.status_code == 400 and e.value.error == "use either :local or :cloud, not both"
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("qwen3:0.6b", messages=[{"role": "user", "content": "x"}], think="hard")
    assert e.value.status_code == 400 and e.value.error.startswith("invalid think value")


def test_go_times_have_nanoseconds():
    from tests.fake_ollama import _go_time

    assert _go_time(1.123456789) == "1970-01-01T00:00:01.123456789Z"
    assert _go_time(2.5) == "1970-01-01T00:00:02.5Z" and _go_time(3) == "1970-01-01T00:00:03Z"


def test_pull_lookups_are_case_insensitive_and_partials_are_per_blob(srv, client):
    events = list(client.pull("GEMMA3:1B", stream=True))
    assert events[-1].status == "success" and "gemma3:1b" in srv.installed_names()
    srv.add_remote(FakeModel(name="gemma3:latest", layers=BIG, blobs_of="gemma3:1b"))
    again = [e for e in client.pull("gemma3", stream=True) if e.digest]
    assert len(again) == 3 and all(e.completed == e.total for e in again)  # shared blobs


def test_cloud_proxy_and_faults(srv, client):
    from tests.fake_ollama import BUSY, CLOUD_DISABLED, SIGNIN_URL

    srv.add_cloud(FakeModel(name="gpt-oss:120b", family="gptoss"))
    msg = [{"role": "user", "content": "x"}]
    assert client.chat("gpt-oss:120b:cloud", messages=msg).message.content == "You said: x"
    srv.signed_in = False
    r = httpx.post(srv.url + "/api/chat", json={"model": "gpt-oss:120b-cloud", "messages": msg})
    assert r.status_code == 401 and r.json() == {"error": "unauthorized", "signin_url": SIGNIN_URL}
    srv.cloud_disabled = True
    r = httpx.post(srv.url + "/api/chat", json={"model": "gpt-oss:120b-cloud", "messages": msg})
    assert r.status_code == 403 and r.json() == {"error": CLOUD_DISABLED}
    srv.faults.busy = 1
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("llama3.2", messages=msg)
    assert e.value.status_code == 503 and e.value.error == BUSY
    srv.faults.chat_error_after = (1, "an error was encountered while running the model: x")
    got = []
    with pytest.raises(ollama.ResponseError) as e:
        for p in client.chat("llama3.2", messages=[{"role": "user", "content": "a b"}], stream=True):
            got.append(p.message.content)
    assert got == ["You"] and e.value.status_code == -1


# --------------------------------------------------------------------------- issue 20's switches
def _pull_lines(srv, name="gemma3:1b", **body):
    """Every line of a streamed pull, as dicts (the error line included)."""
    with httpx.Client(base_url=srv.url, timeout=30) as h:
        with h.stream("POST", "/api/pull", json={"model": name, **body}) as r:
            assert r.status_code == 200
            return [json.loads(line) for line in r.iter_lines() if line]


def _completed(lines, total=300_000):
    return [x.get("completed", 0) for x in lines if x.get("total") == total]


def test_registry_outage_repeats_the_same_value_then_names_the_signed_url(srv):
    srv.scale_time(0.01, tick_bytes=20_000)
    srv.faults.registry_gone_at = 100_000
    lines = _pull_lines(srv)
    done = _completed(lines)
    assert done[:5] == [20_000, 40_000, 60_000, 80_000, 100_000]
    assert set(done[4:]) == {100_000} and len(done) > 50  # 63 s of retries, every tick
    error = lines[-1]["error"]
    url = re.fullmatch(r'max retries exceeded: Get "(https://[^"]+)": dial tcp: lookup '
                       r'[^:]+: no such host', error).group(1)
    assert len(url) > 400 and "X-Amz-Signature=" in url and "X-Amz-Credential=" in url
    assert srv.partial_bytes("gemma3:1b") == 100_000 and srv.faults.registry_gone_at is None


def test_registry_stall_restarts_the_part_from_zero(srv):
    srv.scale_time(0.01, tick_bytes=20_000)
    srv.faults.registry_stall_at = 100_000
    lines = _pull_lines(srv)
    done = _completed(lines)
    drop = next(i for i, (a, b) in enumerate(zip(done, done[1:])) if b < a) + 1
    assert set(done[4:drop]) == {100_000} and drop > 25  # 30 s of identical ticks
    assert done[drop] == 20_000 and done[drop:] == sorted(done[drop:])  # the part restarts
    assert lines[-1] == {"status": "success"}


def test_a_dropped_blob_connection_repeats_the_value_for_a_second_then_goes_on(srv):
    srv.scale_time(0.2, tick_bytes=20_000)
    srv.faults.registry_drop_at = 100_000
    done = _completed(_pull_lines(srv))
    assert done == sorted(done) and 8 <= done.count(100_000) <= 20  # 1 s of 60 ms ticks
    assert "gemma3:1b" in srv.installed_names()


def test_registry_errors_before_and_after_the_download(srv, client):
    srv.faults.registry_down = True
    assert _pull_lines(srv)[-1] == {"error": 'pull model manifest: Get "https://registry.ollama.ai'
                                             '/v2/library/gemma3/manifests/1b": dial tcp: lookup '
                                             'registry.ollama.ai: no such host'}
    srv.faults.registry_down = False
    srv.add_remote(FakeModel(name="127.0.0.1:5000/me/tiny:latest", layers=[1_000]))
    srv.plain_http_registries.add("127.0.0.1:5000")
    assert _pull_lines(srv, "127.0.0.1:5000/me/tiny")[-1]["error"].endswith(
        'Get "https://127.0.0.1:5000/v2/me/tiny/manifests/latest": tls: first record does not '
        'look like a TLS handshake')
    assert _pull_lines(srv, "127.0.0.1:5000/me/tiny", insecure=True)[-1] == {"status": "success"}
    srv.faults.blob_without_location = True
    assert _pull_lines(srv) == [{"status": "pulling manifest"},
                                {"error": "http: no Location header in response"}]
    srv.faults.blob_without_location = False
    srv.chunk_size = 10**9  # every blob arrives within one tick: no layer line at all
    srv.faults.digest_mismatch = True
    lines = _pull_lines(srv)
    assert [x.get("status") for x in lines[:2]] == ["pulling manifest", "verifying sha256 digest"]
    assert re.fullmatch(r"digest mismatch, file must be downloaded again: want sha256:[0-9a-f]{64}"
                        r", got sha256:[0-9a-f]{64}", lines[2]["error"])
    with pytest.raises(ollama.ResponseError) as e:  # stream=false: the same text, HTTP 500
        client.pull("gemma3:1b")
    assert e.value.status_code == 500 and e.value.error.startswith("digest mismatch")


def test_disk_full_names_the_servers_partial_file(srv):
    srv.faults.disk_full()
    error = _pull_lines(srv)[-1]["error"]
    assert re.fullmatch(r"write /root/\.ollama/models/blobs/sha256-[0-9a-f]{64}-partial: no "
                        r"space left on device", error)


def test_an_embedding_model_and_the_embed_route(srv, client):
    srv.add_installed(FakeModel(name="nomic-embed-text:latest", capabilities=["embedding"],
                                family="nomic-bert"))
    msg = [{"role": "user", "content": "x"}]
    for call, what in ((lambda: client.chat("nomic-embed-text", messages=msg), "chat"),
                       (lambda: client.generate("nomic-embed-text", prompt="x"), "generate")):
        with pytest.raises(ollama.ResponseError) as e:
            call()
        assert (e.value.status_code, e.value.error) == (
            400, f'"nomic-embed-text" does not support {what}')
    vectors = client.embed("nomic-embed-text", input=["a", "b"]).embeddings
    assert len(vectors) == 2 and abs(sum(v * v for v in vectors[0]) - 1) < 1e-6
    with pytest.raises(ollama.ResponseError) as e:
        client.embed("llama3.2", input="a")
    assert e.value.status_code == 501 and "does not support embeddings" in e.value.error


def test_cloud_disabled_shows_in_status(srv):
    srv.cloud_disabled = True
    r = httpx.get(srv.url + "/api/status")
    assert r.json() == {"cloud": {"disabled": True, "source": "env"}}


def test_a_spurious_not_found_for_an_installed_model_once(srv, client):
    srv.faults.spurious_not_found = 1
    msg = [{"role": "user", "content": "x"}]
    with pytest.raises(ollama.ResponseError) as e:
        client.chat("llama3.2", messages=msg)
    assert (e.value.status_code, e.value.error) == (404, "model 'llama3.2' not found")
    assert client.chat("llama3.2", messages=msg).message.content == "You said: x"


def test_128_character_name_parts_only_where_the_release_allows_them(srv, client):
    name = "a" * 100 + ":latest"
    with pytest.raises(ollama.ResponseError) as e:
        client.pull(name)
    assert (e.value.status_code, e.value.error) == (400, "invalid model name")
    srv.name_part_max = 128  # releases 0.34-0.40
    srv.add_installed(FakeModel(name=name))
    assert client.chat(name, messages=[{"role": "user", "content": "x"}]).message.content
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("b" * 129)
    assert e.value.error == "invalid model name"


def test_a_router_in_front_passes_chat_and_refuses_management(srv, client):
    srv.router = True
    assert client.chat("llama3.2", messages=[{"role": "user", "content": "x"}]).message.content
    assert client.list().models
    for method, path, body in (("POST", "/api/pull", {"model": "gemma3:1b"}),
                               ("DELETE", "/api/delete", {"model": "llama3.2"}),
                               ("POST", "/api/copy", {"source": "llama3.2", "destination": "x"})):
        r = httpx.request(method, srv.url + path, json=body)
        assert (r.status_code, r.text) == (501, "model management operations not supported by "
                                                "proxy\n")
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = httpx.post(srv.url + "/api/show", json={"model": "llama3.2"})
    assert (r.status_code, r.text) == (501, "model show not supported in multi-instance proxy\n")
    assert "llama3.2:latest" in srv.installed_names()


def test_copy_delete_and_the_runner_dying_mid_answer(srv, client):
    r = httpx.post(srv.url + "/api/copy", json={"source": "llama3.2", "destination": "mine"})
    assert (r.status_code, r.content, "content-type" in r.headers) == (200, b"", False)
    assert "mine:latest" in srv.installed_names()
    r = httpx.request("DELETE", srv.url + "/api/delete", json={"model": "mine"})
    assert (r.status_code, r.content, "content-type" in r.headers) == (200, b"", False)
    srv.faults.runner_dies(1)
    got = []
    with pytest.raises(ollama.ResponseError) as e:
        for p in client.chat("llama3.2", messages=[{"role": "user", "content": "a b"}], stream=True):
            got.append(p.message.content)
    assert got == ["You"] and e.value.error == ("an error was encountered while running the "
                                                "model: unexpected EOF")
    assert [m.model for m in client.ps().models] == ["llama3.2:latest"]  # listed, stale

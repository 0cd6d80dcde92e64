"""A fleet's pulls, deletes, loads and views (issue 18): two fake Ollama servers, each with its
own faults, through the real ``ollama`` client; a router in front that will not pull."""

from __future__ import annotations

import threading

import pytest

import contextpilot as cp
from tests.conftest import REMOTE, SMALL, THINKER
from tests.fake_fleet import FakeRouter, make_host
from tests.test_fleet import HI, close_fleets, fleet_of, two  # noqa: F401 - fixtures


def hosts_of(values) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v.host not in seen:
            seen.append(v.host)
    return seen


# -- pulls ----------------------------------------------------------------------------------

def test_a_pull_to_one_host_downloads_there_only(two):
    a, b = two
    values = list(fleet_of(a, b).pull_model("mistral", hosts="gpu2"))
    assert hosts_of(values) == ["gpu2"] and values[-1].done
    assert "mistral:latest" in b.installed_names() and a.pull_requests == {}


def test_a_pull_without_hosts_goes_where_a_chat_would(two):
    a, b = two
    cp.load_model("llama3.2", host=b.url)
    fleet = fleet_of(a, b)
    assert hosts_of(fleet.pull_model("llama3.2")) == ["gpu2"]  # loaded there: its host
    assert hosts_of(fleet.pull_model("mistral")) == ["gpu1"]  # nobody has it: rules 3-5


def test_a_pull_to_all_hosts_runs_at_once_and_a_failure_on_one_names_it(two):
    a, b = two
    a.faults.drop_pull_after = 1_000_000  # gpu1 drops the connection partway
    a.event_delay = b.event_delay = 0.002
    fleet = fleet_of(a, b)
    values = []
    with pytest.raises(cp.PullFailed) as e:
        for v in fleet.pull_model("mistral", hosts="all"):
            values.append(v)
    assert set(hosts_of(values)) == {"gpu1", "gpu2"}
    assert [v for v in values if v.host == "gpu2"][-1].done
    assert not any(v.done for v in values if v.host == "gpu1")
    message = str(e.value)
    assert message.startswith("Downloading 'mistral:latest' failed on gpu1. gpu1: Downloading "
                              "model 'mistral:latest' failed (connection lost")
    assert message.endswith("The partial download stays on gpu1: pull it again there to "
                            "resume. It is ready on gpu2.")
    assert "ollama pull" not in message  # `ollama pull` would go to OLLAMA_HOST, not gpu1
    # a lost connection's advice is the server's, not "pull it manually" (issue 20, item 7)
    assert "Make sure it is running ('ollama serve')" in message
    assert e.value.host_name == "gpu1" and [n for n, _ in e.value.failures] == ["gpu1"]
    assert "mistral:latest" in b.installed_names()
    assert a.partial_bytes("mistral") > 0  # the partial stays on gpu1: nothing moved
    a.faults.reset()
    again = list(fleet.pull_model("mistral", hosts="gpu1"))
    assert again[-1].done and again[-1].resumed_bytes > 0


def test_a_pull_to_a_host_that_is_down_says_which_and_what_to_do(two, dead_host):
    _, b = two
    with pytest.raises(cp.OllamaUnavailable) as e:
        list(fleet_of(dead_host, b).pull_model("mistral", hosts="gpu1"))
    assert str(e.value) == (
        "gpu1: Cannot connect to Ollama server at gpu1. Please ensure Ollama is installed and "
        "running. Install: https://ollama.com/download | Start: 'ollama serve' Nothing was "
        "downloaded there: start Ollama on gpu1, or pull to another host.")
    assert b.pull_requests == {}  # never moved elsewhere on its own


@pytest.mark.parametrize("how", ["token", "close"])
def test_cancelling_a_pull_to_all_hosts_stops_every_one(two, how):
    a, b = two
    for fake in (a, b):
        fake.faults.stall_pull_after = 500_000
    token = cp.CancelToken()
    pulls = cp.Fleet({"gpu1": a.url, "gpu2": b.url}).pull_model("mistral", hosts="all",
                                                                 cancel=token)
    seen: set[str] = set()
    with pytest.raises(cp.PullCancelled) if how == "token" else _nothing():
        for v in pulls:
            seen.add(v.host)
            if seen == {"gpu1", "gpu2"} and v.completed >= 500_000:
                if how == "token":
                    token.cancel()
                else:
                    pulls.close()
                    break
    for fake in (a, b):
        assert fake.disconnected.wait(5)
    assert not cp.active_pulls()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- delete, running, load, unload ----------------------------------------------------------

def test_delete_on_all_hosts_removes_it_everywhere(two):
    a, b = two
    fleet = fleet_of(a, b)
    assert fleet.delete_model("llama3.2", hosts="all") == ["gpu1", "gpu2"]
    assert "llama3.2:latest" not in a.installed_names() + b.installed_names()
    assert fleet.delete_model("qwen3:0.6b", hosts="all") == ["gpu1"]  # where it was
    with pytest.raises(cp.ModelNotFound):
        fleet.delete_model("qwen3:0.6b", hosts="all")


def test_delete_on_one_host_keeps_the_others_copy(two):
    a, b = two
    fleet = fleet_of(a, b)
    assert fleet.delete_model("llama3.2", hosts=["gpu2"]) == ["gpu2"]
    assert [(m.name, m.hosts) for m in fleet.list_models()][-1] == ("llama3.2:latest", ("gpu1",))


def test_a_delete_that_fails_on_one_host_names_it(two, dead_host):
    a, _ = two
    fleet = fleet_of(a, dead_host)
    with pytest.raises(cp.OllamaUnavailable) as e:
        fleet.delete_model("llama3.2", hosts="all")
    assert str(e.value).startswith("Deleting 'llama3.2:latest' failed on gpu2. gpu2: Cannot "
                                   "connect to Ollama server at gpu2.")
    assert str(e.value).endswith("It worked on gpu1.")
    assert "llama3.2:latest" not in a.installed_names()


def test_running_models_each_with_its_host(two):
    a, b = two
    fleet = fleet_of(a, b)
    assert fleet.load_model("llama3.2", host="gpu2") == "gpu2"
    assert fleet.load_model("qwen3:0.6b") == "gpu1"  # only gpu1 has it
    assert sorted((m.name, m.host) for m in fleet.running_models()) == [
        ("llama3.2:latest", "gpu2"), ("qwen3:0.6b", "gpu1")]
    assert [m.host for m in fleet.running_models(hosts="gpu2")] == ["gpu2"]
    assert fleet.unload_model("llama3.2") == ["gpu2"]  # where it is loaded
    assert [m.host for m in fleet.running_models()] == ["gpu1"]


def test_list_models_merged_with_hosts_and_where_loaded(two, dead_host):
    a, b = two
    cp.load_model("llama3.2", host=b.url)
    listed = {m.name: m for m in fleet_of(a, b, dead_host).list_models()}
    assert listed["llama3.2:latest"].hosts == ("gpu1", "gpu2")
    assert listed["llama3.2:latest"].loaded_on == ("gpu2",)
    assert (listed["qwen3:0.6b"].hosts, listed["qwen3:0.6b"].loaded_on) == (("gpu1",), ())
    assert listed["llama3.2:latest"].size == SMALL.size


def test_list_models_with_every_host_down_is_one_clear_error(dead_host):
    with pytest.raises(cp.NoHostAvailable, match="No Ollama host answers: gpu1 refused"):
        fleet_of(dead_host).list_models()


def test_listing_three_hosts_asks_them_at_once(two, monkeypatch):
    from contextpilot import models

    a, b = two
    c = make_host([THINKER])
    barrier = threading.Barrier(3, timeout=5)
    real = models.installed_by_key

    def together(url):
        barrier.wait()  # raises BrokenBarrierError if the hosts were asked one by one
        return real(url)

    monkeypatch.setattr(models, "installed_by_key", together)
    try:
        listed = fleet_of(a, b, c).list_models()
    finally:
        c.stop()
    assert {m.name: m.hosts for m in listed} == {"llama3.2:latest": ("gpu1", "gpu2"),
                                                 "qwen3:0.6b": ("gpu1", "gpu3")}


# -- status and the hosts' addresses --------------------------------------------------------

def test_status_of_each_host(two, dead_host):
    a, b = two
    cp.load_model("llama3.2", host=a.url)
    fleet = fleet_of(a, b, dead_host)
    s1, s2, s3 = fleet.status()
    assert (s1.name, s1.url, s1.reachable, s1.version, s1.cloud) == (
        "gpu1", a.url, True, "0.33.0", True)
    assert (s1.installed, s1.loaded) == (("qwen3:0.6b", "llama3.2:latest"), ("llama3.2:latest",))
    assert (s2.installed, s2.loaded, s2.error) == (("llama3.2:latest",), (), "")
    assert (s3.reachable, s3.error, s3.installed) == (
        False, "gpu3 refused the connection (just now)", ())


def test_messages_name_hosts_and_redact_shows_no_address(two, dead_host):
    a, b = two
    fleet = fleet_of(a, dead_host)
    errors = []
    for call in (lambda: list(fleet.chat_stream("llama3.2", HI, host="gpu2")),
                 lambda: list(fleet.pull_model("mistral", hosts="gpu2")),
                 lambda: fleet.delete_model("llama3.2", hosts="all")):
        with pytest.raises(cp.ContextPilotError) as e:
            call()
        errors.append(str(e.value))
    port = dead_host.rsplit(":", 1)[1]
    assert all("gpu2" in m and port not in m and "127.0.0.1" not in m for m in errors), errors
    raw = f"Cannot connect to Ollama server at {dead_host}. Or {dead_host.split('//')[1]}/x"
    assert fleet.redact(raw) == "Cannot connect to Ollama server at gpu2. Or gpu2x"
    assert fleet.urls() == {"gpu1": a.url, "gpu2": dead_host}


# -- a router in front ------------------------------------------------------------------------

@pytest.fixture
def router():
    fake = make_host([SMALL], [REMOTE], cls=FakeRouter)
    yield fake
    fake.stop()


def test_behind_a_router_chat_works_and_management_says_what_it_needs(router, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", router.url)
    events = list(cp.chat_stream("llama3.2", HI))
    assert events[-1].done_reason == "stop"
    with pytest.raises(cp.PullFailed) as e:
        list(cp.pull_model("mistral"))
    assert e.value.kind == "router"
    assert str(e.value) == (
        f"Downloading model 'mistral:latest' failed (the server does not do downloads "
        f"(not implemented: this endpoint is not proxied)). The server at {router.url} "
        f"answers chats but not downloads, details or deletes: it is a router in front of "
        f"Ollama (Olla, a proxy), not Ollama itself. Those need the Ollama hosts' own "
        f"addresses: list them in OLLAMA_HOSTS "
        f"(gpu1=http://10.0.0.5:11434,gpu2=http://10.0.0.6:11434).")
    for call in (lambda: cp.delete_model("llama3.2"), lambda: cp.model_details("llama3.2")):
        with pytest.raises(cp.OllamaError) as e2:
            call()
        assert e2.value.status_code == 501 and "list them in OLLAMA_HOSTS" in str(e2.value)


def test_a_chat_behind_a_router_that_must_pull_says_so(router, monkeypatch):
    with pytest.raises(cp.PullFailed) as e:
        list(cp.Fleet([router.url]).chat_stream("mistral", HI))
    assert "is not installed, and downloading it failed" in str(e.value)  # issue 20, item 2
    assert "list them in OLLAMA_HOSTS" in str(e.value) and e.value.kind == "router"


# -- the downloads panel's view, by host name -----------------------------------------------

def test_running_and_recent_pulls_name_their_host_and_cancel_stops_them(two):
    a, b = two
    b.faults.stall_pull_after = 500_000
    fleet = fleet_of(a, b)
    values = fleet.pull_model("mistral", hosts="gpu2")
    first = next(values)
    assert first.host == "gpu2"
    active = fleet.active_pulls()
    assert [(p.model, p.host) for p in active] == [("mistral:latest", "gpu2")]
    assert fleet.cancel_pull("mistral") == ["gpu2"]
    with pytest.raises(cp.PullCancelled) as e:
        list(values)
    assert e.value.host_name == "gpu2" and str(e.value).startswith("gpu2: ")
    recent = fleet.recent_pulls()
    assert [(o.model, o.host, o.outcome) for o in recent][:1] == [
        ("mistral:latest", "gpu2", "cancelled")]
    assert b.url not in recent[0].message and fleet.active_pulls() == []


def test_details_come_from_a_host_that_has_the_model(two):
    a, b = two
    fleet = fleet_of(b, a)  # gpu1 has no qwen3
    assert fleet.model_details("qwen3:0.6b").supports_thinking
    with pytest.raises(cp.ModelNotFound, match="not installed on any host that answers"):
        fleet.model_details("mistral")
    with pytest.raises(cp.ModelNotFound) as e:
        fleet.model_details("qwen3:0.6b", host="gpu1")
    assert e.value.host_name == "gpu1"


def test_redact_hides_a_bare_host_name_too():
    fleet = cp.Fleet({"gpu1": "https://gpu-box:11434", "gpu2": "http://10.0.0.5:11434",
                      "gpu3": "http://10.0.0.5:11435"})
    assert fleet.redact("certificate is not valid for 'gpu-box' (https://gpu-box:11434/)") == (
        "certificate is not valid for 'gpu1' (gpu1)")
    assert fleet.redact("10.0.0.5:11435 and 10.0.0.5, not 10.0.0.55 or gpu-box2") == (
        "gpu3 and a host, not 10.0.0.55 or gpu-box2")


def test_a_chats_failed_auto_pull_keeps_the_kind_and_its_advice(two):
    a, b = two
    a.faults.pull_error = "dial tcp: lookup registry.ollama.ai: no such host"
    with pytest.raises(cp.PullFailed) as e:
        list(fleet_of(a, b).chat_stream("mistral", HI))
    assert e.value.kind == "registry unreachable" and e.value.host_name == "gpu1"
    assert "could not reach the model registry" in str(e.value)
    assert b.pull_requests == {}  # a pull never moves to another host on its own


def test_status_is_bounded_by_its_timeout():
    from tests.fake_fleet import mute_host

    with mute_host() as mute:
        fleet = fleet_of(mute)
        s, = fleet.status(timeout=0.3)
    assert (s.reachable, s.error) == (False, "gpu1 did not answer within 0.3 s")

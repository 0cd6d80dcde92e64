"""A fleet (issue 18): two or three fake Ollama servers on their own ports, each with its own
models and faults, driven through the real ``ollama`` client. Routing, failover, hosts that
go down and come back, hostile host names, OLLAMA_HOSTS, and a fleet of one."""

from __future__ import annotations

import threading
import time

import pytest

import contextpilot as cp
from contextpilot import _client, settings
from tests.conftest import REMOTE, SMALL, THINKER
from tests.fake_fleet import make_host, silent_host

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def two():
    """gpu1: llama3.2 and qwen3:0.6b; gpu2: llama3.2. Both can pull mistral."""
    a = make_host([SMALL, THINKER], [REMOTE])
    b = make_host([SMALL], [REMOTE])
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def quick_busy(monkeypatch):
    monkeypatch.setattr(_client, "BUSY_DELAYS", (0.01, 0.01, 0.01))


_made: list = []


@pytest.fixture(autouse=True)
def close_fleets():
    """Each test's fleets stop probing when it ends (a prober must not reach a port that a
    later test's fake took)."""
    yield
    while _made:
        _made.pop().close()


def fleet_of(*fakes, **kw) -> cp.Fleet:
    urls = [f if isinstance(f, str) else f.url for f in fakes]
    fleet = cp.Fleet({f"gpu{i + 1}": u for i, u in enumerate(urls)}, **kw)
    _made.append(fleet)
    return fleet


def answer(events) -> tuple[cp.Routed, str, cp.ChatDone]:
    events = list(events)
    assert isinstance(events[0], cp.Routed)
    text = "".join(e.text for e in events if isinstance(e, cp.ContentDelta))
    return events[0], text, events[-1]


def chats(fake) -> int:
    return len(fake.chat_requests)


# -- routing ------------------------------------------------------------------------------

def test_two_hosts_with_different_models_each_model_goes_where_it_is(two):
    a, b = two
    b.add_installed(REMOTE)
    fleet = fleet_of(a, b)
    routed, text, done = answer(fleet.chat_stream("qwen3:0.6b", HI, think=False))
    assert (routed.host, done.host, text) == ("gpu1", "gpu1", "You said: hi")
    routed, _, done = answer(fleet.chat_stream("mistral", HI))
    assert (routed.host, done.host, routed.skipped, routed.pull) == ("gpu2", "gpu2", (), False)
    assert (chats(a), chats(b)) == (1, 1) and b.pull_requests == {} == a.pull_requests


def test_a_host_where_the_model_is_loaded_answers(two):
    a, b = two
    cp.load_model("llama3.2", host=b.url)
    routed, _, done = answer(fleet_of(a, b).chat_stream("llama3.2", HI))
    assert routed.host == done.host == "gpu2"
    assert chats(a) == 0


def test_with_nothing_loaded_the_configured_order_decides(two):
    a, b = two
    routed, _, _ = answer(fleet_of(b, a).chat_stream("llama3.2", HI))
    assert routed.host == "gpu1" and chats(b) == 1 and chats(a) == 0


def test_a_session_sticks_to_the_host_of_its_last_turn(two):
    a, b = two
    for fake in (a, b):
        cp.load_model("llama3.2", host=fake.url)
    fleet = fleet_of(a, b)
    first, _, _ = answer(fleet.chat_stream("llama3.2", HI, session="ada", host="gpu2"))
    again, _, _ = answer(fleet.chat_stream("llama3.2", HI, session="ada"))
    other, _, _ = answer(fleet.chat_stream("llama3.2", HI, session="bob"))
    assert (first.host, again.host, other.host) == ("gpu2", "gpu2", "gpu1")


def test_the_host_with_fewer_answers_in_flight_answers(two):
    a, b = two
    for fake in (a, b):  # loaded on both: rule 2 does not decide
        cp.load_model("llama3.2", host=fake.url)
    fleet = fleet_of(a, b)
    held = fleet.chat_stream("llama3.2", HI)
    assert next(held).host == "gpu1" and isinstance(next(held), cp.ContentDelta)
    assert [s.in_flight for s in fleet.status()] == [1, 0]
    routed, _, _ = answer(fleet.chat_stream("llama3.2", HI))
    held.close()
    assert routed.host == "gpu2"
    assert [s.in_flight for s in fleet.status()] == [0, 0]


def test_a_burst_of_chats_spreads_over_the_hosts(two):
    a, b = two
    for fake in (a, b):
        cp.load_model("llama3.2", host=fake.url)
        fake.token_delay = 0.05
    fleet = fleet_of(a, b)
    start = threading.Barrier(8, timeout=5)
    hosts = []

    def user():
        start.wait()
        hosts.append(answer(fleet.chat_stream("llama3.2", HI))[0].host)

    threads = [threading.Thread(target=user) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(hosts) == ["gpu1"] * 4 + ["gpu2"] * 4
    assert [s.in_flight for s in fleet.status()] == [0, 0]


def test_a_full_loaded_host_lets_one_where_it_is_installed_take_the_next(two):
    a, b = two
    cp.load_model("llama3.2", host=a.url)
    fleet = fleet_of(a, b, busy_after=1)
    held = fleet.chat_stream("llama3.2", HI)
    assert next(held).host == "gpu1"
    next(held)
    routed, _, _ = answer(fleet.chat_stream("llama3.2", HI))
    held.close()
    assert routed.host == "gpu2"


def test_no_host_has_it_pulls_on_one_host_then_answers_there(two):
    a, b = two
    events = list(fleet_of(a, b).chat_stream("mistral", HI, session="s"))
    routed, done = events[0], events[-1]
    pulls = [e for e in events if isinstance(e, cp.PullProgress)]
    assert (routed.host, routed.pull, done.host) == ("gpu1", True, "gpu1")
    assert pulls and {p.host for p in pulls} == {"gpu1"} and pulls[-1].done
    assert a.pull_requests == {"mistral:latest": 1} and b.pull_requests == {}
    assert "mistral:latest" in a.installed_names() and "mistral:latest" not in b.installed_names()


def test_without_auto_pull_a_model_no_host_has_is_not_found_naming_the_hosts(two):
    a, b = two
    with pytest.raises(cp.ModelNotFound) as e:
        list(fleet_of(a, b).chat_stream("mistral", HI, auto_pull=False))
    assert str(e.value) == (
        "Model 'mistral:latest' is not installed on any host that answers (gpu1, gpu2). "
        "Please pull it first: python -m contextpilot pull mistral:latest --host gpu1")
    assert a.pull_requests == {} == b.pull_requests


def test_a_cloud_model_goes_to_any_reachable_host(two):
    a, b = two
    for fake in (a, b):
        fake.add_cloud(cp_model("gpt-oss:120b"))
    a.faults.refuse = True
    routed, text, done = answer(fleet_of(a, b).chat_stream("gpt-oss:120b:cloud", HI))
    assert (routed.host, done.host, text) == ("gpu2", "gpu2", "You said: hi")
    assert routed.message == "gpu1 did not answer; answered by gpu2"
    assert b.pull_requests == {}


def cp_model(name):
    from tests.fake_ollama import FakeModel

    return FakeModel(name=name, layers=[100])


# -- failover before the first token, and after it ----------------------------------------

def test_a_host_down_at_start_is_skipped_and_said_so(two, dead_host):
    _, b = two
    fleet = fleet_of(dead_host, b)
    routed, text, done = answer(fleet.chat_stream("llama3.2", HI))
    assert routed.message == "gpu1 did not answer; answered by gpu2"
    assert (text, done.host) == ("You said: hi", "gpu2")
    again, _, _ = answer(fleet.chat_stream("llama3.2", HI))  # skipped for a while: not tried
    assert (again.host, again.skipped) == ("gpu2", ())
    status = fleet.status()
    assert [(s.name, s.reachable) for s in status] == [("gpu1", False), ("gpu2", True)]
    assert status[0].error == "gpu1 refused the connection (just now)"


def test_a_host_that_times_out_connecting_is_skipped_without_waiting_again(two, monkeypatch):
    _, b = two
    monkeypatch.setenv("CONTEXTPILOT_CONNECT_TIMEOUT", "0.4")
    with silent_host() as silent:
        fleet = fleet_of(silent, b)
        t0 = time.monotonic()
        routed, _, _ = answer(fleet.chat_stream("llama3.2", HI))
        first = time.monotonic() - t0
        t0 = time.monotonic()
        again, _, _ = answer(fleet.chat_stream("llama3.2", HI))
        second = time.monotonic() - t0
        assert routed.message == "gpu1 did not answer; answered by gpu2"
        assert (again.host, again.skipped) == ("gpu2", ())
        assert first >= 0.4 and second < 0.3  # no probing on the request path
        assert fleet.status()[0].error.startswith("gpu1 timed out connecting")


def test_a_host_that_dies_before_the_first_token_is_skipped_and_said_so(two):
    a, b = two
    cp.load_model("llama3.2", host=a.url)  # routed to gpu1 first
    a.faults.drop_chat_after = 0
    routed, text, done = answer(fleet_of(a, b).chat_stream("llama3.2", HI))
    assert routed.message == "gpu1 stopped before answering; answered by gpu2"
    assert (text, done.host) == ("You said: hi", "gpu2") and chats(a) == 1


def test_a_busy_host_is_skipped_after_the_quiet_retries(two, quick_busy):
    a, b = two
    a.faults.busy = 100
    fleet = fleet_of(a, b)
    routed, _, done = answer(fleet.chat_stream("llama3.2", HI))
    assert routed.message == "gpu1 was busy; answered by gpu2" and done.host == "gpu2"
    assert chats(a) == 4  # the first try and three retries, as with one host
    assert fleet.status()[0].reachable  # busy is not down
    assert [s.in_flight for s in fleet.status()] == [0, 0]


def test_a_host_that_dies_mid_answer_keeps_the_partial_and_is_named(two):
    a, b = two
    cp.load_model("llama3.2", host=a.url)
    SMALL.reply = lambda messages: "one two three four five"
    try:
        a.faults.drop_chat_after = 2
        fleet = fleet_of(a, b)
        received = []
        with pytest.raises(cp.OllamaUnavailable) as e:
            for event in fleet.chat_stream("llama3.2", HI, session="s"):
                received.append(event)
    finally:
        SMALL.reply = None
    text = "".join(x.text for x in received if isinstance(x, cp.ContentDelta))
    assert text == "one two"
    assert str(e.value) == ("gpu1 stopped answering in the middle of the answer (the "
                            "connection was lost); what it wrote so far is kept. Send the "
                            "message again to have another host answer.")
    assert e.value.host_name == "gpu1" and chats(b) == 0  # never a silent re-run
    routed, _, _ = answer(fleet.chat_stream("llama3.2", HI, session="s"))
    assert routed.host == "gpu2"


def test_a_model_that_crashes_mid_answer_names_the_host_and_the_next_turn_goes_elsewhere(two):
    a, b = two
    for fake in (a, b):
        cp.load_model("llama3.2", host=fake.url)
    a.faults.chat_error_after = (1, "model runner has unexpectedly stopped, this may be due "
                                 "to resource limitations or an internal error")
    fleet = fleet_of(a, b)
    with pytest.raises(cp.ModelCrashed) as e:
        list(fleet.chat_stream("llama3.2", HI, session="s"))
    assert str(e.value).startswith("gpu1: 'llama3.2:latest' stopped in the middle of its answer")
    assert str(e.value).endswith("Send the message again to have another host answer.")
    assert e.value.host_name == "gpu1" and e.value.mid_answer
    a.faults.chat_error_after = None
    assert answer(fleet.chat_stream("llama3.2", HI, session="s"))[0].host == "gpu2"
    assert answer(fleet.chat_stream("llama3.2", HI, session="t"))[0].host == "gpu1"


def test_all_hosts_down_is_one_message_naming_each_hosts_state(dead_host, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_CONNECT_TIMEOUT", "0.3")
    with silent_host() as silent:
        fleet = fleet_of(dead_host, silent)
        with pytest.raises(cp.NoHostAvailable) as e:
            list(fleet.chat_stream("llama3.2", HI))
        message = str(e.value)
        assert message == (
            "No Ollama host answers: gpu1 refused the connection (just now); gpu2 timed out "
            "connecting (just now). Start Ollama on one of them ('ollama serve') or check "
            "OLLAMA_HOSTS; ContextPilot tries them again in the background.")
        assert e.value.states[0] == ("gpu1", "refused the connection (just now)")
        with pytest.raises(cp.NoHostAvailable):  # at once now: both are skipped
            t0 = time.monotonic()
            list(fleet.chat_stream("llama3.2", HI))
        assert time.monotonic() - t0 < 0.25


def test_a_named_host_that_is_down_is_an_error_naming_it_without_failover(two, dead_host):
    _, b = two
    with pytest.raises(cp.OllamaUnavailable) as e:
        list(fleet_of(dead_host, b).chat_stream("llama3.2", HI, host="gpu1"))
    assert str(e.value).startswith("gpu1: Cannot connect to Ollama server at gpu1.")
    assert dead_host.split("//")[1] not in str(e.value) and chats(b) == 0


# -- a host that comes back -----------------------------------------------------------------

def test_a_host_that_comes_back_takes_traffic_again(two):
    a, b = two
    cp.load_model("llama3.2", host=a.url)
    fleet = fleet_of(a, b, probe_backoff=(0.05,))
    a.faults.refuse = True
    assert answer(fleet.chat_stream("llama3.2", HI))[0].message == (
        "gpu1 did not answer; answered by gpu2")
    health = fleet._core.health
    assert health.is_down("gpu1")
    a.faults.refuse = False
    assert health.wait_until(lambda: not health.is_down("gpu1"), timeout=5)
    routed, _, _ = answer(fleet.chat_stream("llama3.2", HI))
    assert (routed.host, routed.skipped) == ("gpu1", ())
    assert fleet.status()[0].reachable


def test_the_prober_follows_an_injected_clock_and_backs_off():
    from contextpilot.fleet._health import Health

    now = [100.0]
    asked = []
    answers = {"gpu1": "refused the connection"}
    probed = threading.Event()

    def probe(name):
        asked.append((name, now[0]))
        probed.set()
        return answers[name]

    health = Health(["gpu1"], probe, clock=lambda: now[0], backoff=(10.0, 30.0))
    health.mark_down("gpu1", "refused the connection")
    health.poke()
    assert not probed.wait(0.2) and asked == []  # not due for 10 s of the clock
    now[0] = 110.0
    health.poke()
    assert probed.wait(5) and asked == [("gpu1", 110.0)]
    probed.clear()
    now[0] = 130.0  # the next probe is due 30 s after the failed one
    health.poke()
    assert not probed.wait(0.2)
    answers["gpu1"] = None
    now[0] = 140.0
    health.poke()
    assert health.wait_until(lambda: not health.is_down("gpu1"), 5)
    assert [t for _, t in asked] == [110.0, 140.0]
    health.close()


# -- hostile host names -------------------------------------------------------------------

HOSTILE = ["http://127.0.0.1:11434", "gpu3", "../gpu1", "gpu1/../x", "..", "gpu1 ",  # noqa
           ["gpu1"], {"name": "gpu1"}, 1, b"gpu1"]


@pytest.mark.parametrize("host", [h for h in HOSTILE if h != "gpu1 "])
def test_a_hostile_host_for_a_chat_is_refused_before_any_request(two, host):
    a, b = two
    fleet = fleet_of(a, b)
    with pytest.raises(cp.InvalidRequest) as e:
        fleet.chat_stream("llama3.2", HI, host=host)
    assert "choose one of gpu1, gpu2 (or auto)" in str(e.value)
    assert a.requests == [] == b.requests
    assert a.url not in str(e.value) and b.url not in str(e.value)


@pytest.mark.parametrize("hosts", ["http://127.0.0.1:11434", "gpu3", "../gpu1", [], ["gpu1", ".."],
                                   {"gpu1": 1}, 7])
def test_hostile_hosts_for_a_pull_or_a_delete_are_refused_before_any_request(two, hosts):
    a, b = two
    fleet = fleet_of(a, b)
    with pytest.raises(cp.InvalidRequest):
        fleet.pull_model("mistral", hosts=hosts)
    with pytest.raises(cp.InvalidRequest):
        fleet.delete_model("llama3.2", hosts=hosts)
    assert a.requests == [] == b.requests


def test_auto_and_names_in_any_case_are_accepted(two):
    a, b = two
    fleet = fleet_of(a, b)
    assert answer(fleet.chat_stream("llama3.2", HI, host="AUTO"))[0].host == "gpu1"
    assert answer(fleet.chat_stream("llama3.2", HI, host="GPU2"))[0].host == "gpu2"


# -- configuration ------------------------------------------------------------------------

def test_ollama_hosts_names_and_bare_addresses(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOSTS", " gpu1=http://10.0.0.5:11434, 10.0.0.6 ,[::1]:9,")
    fleet = cp.Fleet.from_env()
    assert fleet.urls() == {"gpu1": "http://10.0.0.5:11434", "10.0.0.6:11434":
                            "http://10.0.0.6:11434", "[::1]:9": "http://[::1]:9"}


@pytest.mark.parametrize("value, entry, problem", [
    ("gpu1=", "gpu1=", "has no address"),
    ("=http://x:1", "=http://x:1", "has a name that is not letters, digits, '-', '_' or '.'"),
    ("gpu 1=http://x", "gpu 1=http://x", "has a name that is not letters"),
    ("gpu1=ftp://x", "gpu1=ftp://x", "has an address that is not http(s)://host:port"),
    ("gpu1=http://x:99999", "gpu1=http://x:99999", "has an address that is not"),
    ("a=http://x,A=http://y", "A=http://y", "names 'A' a second time"),
    ("10.0.0.5,10.0.0.5:11434", "10.0.0.5:11434", "names '10.0.0.5:11434' a second time"),
    ("all=http://x", "all=http://x", "is called 'all', which means every host"),
    ("auto=http://x", "auto=http://x", "is called 'auto', which means the router's choice"),
    ("a..b=http://x", "a..b=http://x", "has a name with '..' in it"),
])
def test_a_malformed_entry_or_a_name_used_twice_is_a_setting_error_naming_it(
        monkeypatch, value, entry, problem):
    monkeypatch.setenv("OLLAMA_HOSTS", value)
    with pytest.raises(cp.SettingError) as e:
        cp.Fleet.from_env()
    assert e.value.name == "OLLAMA_HOSTS"
    assert f"The entry {entry!r} {problem}" in str(e.value)
    with pytest.raises(cp.SettingError):  # front ends check every setting at start
        settings.check()


def test_fleet_arguments_are_checked_like_the_setting():
    with pytest.raises(cp.InvalidRequest, match="has a name that is not letters"):
        cp.Fleet({"gpu 1": "http://x"})
    with pytest.raises(cp.InvalidRequest, match="names 'GPU1' a second time"):
        cp.Fleet({"gpu1": "http://x", "GPU1": "http://y"})
    with pytest.raises(cp.InvalidRequest, match="a mapping of name -> address"):
        cp.Fleet("http://x")
    assert cp.Fleet(["127.0.0.1:1"]).names == ("127.0.0.1:1",)


def test_without_ollama_hosts_ollama_host_is_a_fleet_of_one(fake_ollama, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    fleet = cp.Fleet.from_env()
    name = fake_ollama.url.split("//")[1]
    assert fleet.urls() == {name: fake_ollama.url}
    one = [e for e in cp.chat_stream("qwen3:0.6b", HI)]
    mine = list(fleet.chat_stream("qwen3:0.6b", HI))
    assert mine[0] == cp.Routed(name) and mine[-1].host == name
    strip = lambda evs: [type(e).__name__ + getattr(e, "text", "") for e in evs  # noqa: E731
                         if not isinstance(e, (cp.Routed, cp.ChatDone))]
    assert strip(mine[1:]) == strip(one)
    assert [m.name for m in fleet.list_models()] == [m.name for m in cp.list_models()]
    assert [m.hosts for m in fleet.list_models()] == [(name,), (name,)]
    values = list(fleet.pull_model("mistral"))
    assert values[-1].done and values[-1].host == name


# -- a name is parsed once ------------------------------------------------------------------

def test_a_fleet_chat_and_pull_parse_the_name_once(two, machine):
    from tests.test_layout import BOUNDARIES, _parses_of, _ParseSpy

    a, b = two
    fleet = fleet_of(a, b)
    with _ParseSpy() as spy:
        assert list(fleet.chat_stream("mistral", HI))[-1].host == "gpu1"
        assert list(fleet.pull_model("mistral", hosts="all"))[-1].done
    mine = _parses_of(spy.calls, "mistral")
    assert [c for c in mine if c[1] not in BOUNDARIES] == []
    assert [c for c in mine if c[0] == "mistral"] == [("mistral", "chat_stream"),
                                                      ("mistral", "pull_model")]

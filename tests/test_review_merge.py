"""An attacker's review of the merged app (package layout, fleet, rendering once, shared-app
hardening, issue 20): what broke where the pieces meet, each fixed with a test here.

The shared fleet is two fake Ollama servers configured by their addresses alone (so each is
named by its host:port, and a shared page must show "host 1" / "host 2" instead)."""

from __future__ import annotations

import json

import pytest

import contextpilot as cp
from contextpilot.policy import AccessPolicy
from tests.conftest import SMALL
from tests.fake_fleet import make_host
from tests.ui_helpers import Client, call_event, running_app

FAST_PROBES = (0.05,)


@pytest.fixture(scope="module")
def shared(gpus):
    """A shared app over the two hosts, configured by their addresses alone."""
    a, b = gpus
    with cp.Fleet([a.url, b.url], probe_backoff=FAST_PROBES) as bare:
        policy = AccessPolicy(shared=True, allowed_models=["llama3.2", "qwen3:0.6b", "mistral"])
        with running_app(bare, policy=policy, preload=False) as url:
            yield url


@pytest.fixture
def hosts_up(gpus):
    for srv in gpus:
        srv.faults.reset()
    return gpus


def _addresses(gpus) -> list[str]:
    """What a visitor of the shared app must never read: each host's port."""
    return [g.url.rsplit(":", 1)[1] for g in gpus]


def _leaks(gpus, value) -> list[str]:
    text = json.dumps(value)
    return [port for port in _addresses(gpus) if port in text]


# -- the fleet on a shared app: host labels, never an address --------------------------------

def test_a_chats_download_names_its_host_by_its_label(shared, hosts_up):
    """A chat that downloads its model on "host 2" showed "mistral:latest on 127.0.0.1:PORT"
    in the chat and the download card (``ChatView.feed`` kept the host's real name)."""
    _, b = hosts_up
    try:
        job = Client(shared, verbose=False).submit(
            {"text": "hi", "files": []}, "mistral", "", 0.7, 4096, True, False, "medium",
            "host 2", api_name="/chat")
        list(job)
        outputs = job.outputs()
        assert "mistral:latest" in b.installed_names()
        assert "on host 2" in json.dumps(outputs), outputs[-1]
        assert not _leaks(hosts_up, outputs), outputs[-1]
    finally:
        cp.delete_model("mistral", b.url)


@pytest.mark.parametrize("event, data", [
    ("refresh_models", ("llama3.2", "no-such-host")),
    ("model_changed", ("mistral", "no-such-host")),
    ("controls", ("mistral", "no-such-host")),
    ("download", ("mistral", False, "no-such-host", False)),
])
def test_a_host_choice_refused_under_the_picker_names_no_address(shared, hosts_up, event,
                                                                   data):
    """A host the page never offered is refused in the note under the picker: the refusal
    lists the hosts, and listed them by their host:port (``Service.note_state``)."""
    outputs = call_event(shared, event, *data)
    assert not _leaks(hosts_up, outputs), outputs
    if event != "controls":  # the note: the refusal, with the labels
        assert "There is no host" in json.dumps(outputs) and "host 1, host 2" in json.dumps(
            outputs), outputs


# -- the gate: only a file's path is an upload's name ------------------------------------------

def test_a_messages_text_reaches_ollama_as_written_not_with_the_upload_folder(shared,
                                                                              hosts_up):
    """The gate made every JSON string that starts with "uploads/" the server's upload
    folder, a message's text and system prompt too: Ollama read "/tmp/gradio/...", and a
    model that repeats it another way (in capitals, spelled out) showed the folder."""
    from gradio.utils import get_upload_folder

    a, _ = hosts_up
    job = Client(shared, verbose=False).submit(
        {"text": "uploads/ is where?", "files": []}, "llama3.2", "uploads/rules", 0.7, 4096,
        True, False, "medium", "host 1", api_name="/chat")
    list(job)
    sent = a.chat_requests[-1]
    user = [m["content"] for m in sent["messages"] if m["role"] == "user"][-1]
    system = [m["content"] for m in sent["messages"] if m["role"] == "system"]
    assert user == "uploads/ is where?", user
    assert system == ["uploads/rules"], system
    assert str(get_upload_folder()) not in json.dumps(sent)


# -- the policy on every host ------------------------------------------------------------------

def test_a_name_that_is_a_cloud_copy_on_one_host_is_a_cloud_model_for_visitors():
    """``team-assistant`` is a local model on gpu1 and a cloud copy (``ollama cp
    gpt-oss:120b-cloud team-assistant``) on gpu2: the fleet's list took gpu1's entry, so the
    cloud rule let a visitor of a shared app chat with it on gpu2, on the operator's
    ollama.com account."""
    from tests.fake_ollama import FakeModel

    local = FakeModel(name="team-assistant:latest", reply=lambda m: "a local answer")
    copy = FakeModel(name="team-assistant:latest", layers=[400],
                     remote_host="https://ollama.com:443", remote_model="gpt-oss:120b")
    a, b = make_host([SMALL, local]), make_host([SMALL, copy])
    b.add_cloud(FakeModel(name="gpt-oss:120b", reply=lambda m: "ON THE OPERATOR'S ACCOUNT"))
    try:
        with cp.Fleet({"gpu1": a.url, "gpu2": b.url}, probe_backoff=FAST_PROBES) as fleet:
            assert [m.is_cloud for m in fleet.list_models() if m.name.startswith("team")] == [
                True]
            with running_app(fleet, policy=AccessPolicy(shared=True), preload=False) as url:
                client = Client(url, verbose=False)
                for host in ("gpu2", "auto"):
                    job = client.submit({"text": "hi", "files": []}, "team-assistant", "",
                                        0.7, 4096, True, False, "medium", host,
                                        api_name="/chat")
                    list(job)
                    said = json.dumps(job.outputs()[-1][0])
                    assert "OPERATOR" not in said and "is not allowed" in said, said
    finally:
        a.stop()
        b.stop()


# -- public(): a host configured by its address alone, named without its port -----------------

@pytest.mark.parametrize("text", [
    "The secure (TLS) connection to box.lan:443 failed (certificate verify failed: Hostname "
    "mismatch, certificate is not valid for 'box.lan'.)",
    "dial tcp: lookup 10.0.0.7: no such host",
    "Get \"http://10.0.0.7/api/tags\": connection refused",
])
def test_a_shared_fleet_hides_a_hosts_bare_name_as_one_host_does(text):
    """On one host, ``public`` hides the host's bare name (a TLS error names it); on a fleet,
    a host configured by its address alone is named by its host:port, so the fleet's redact
    leaves its bare name (it is part of the host's name) and a shared page showed it."""
    from contextpilot.ui.hosts import Hosts
    from contextpilot.ui.service import Service

    with cp.Fleet(["http://10.0.0.7:11434", "https://box.lan"]) as fleet:
        service = Service(Hosts(fleet), AccessPolicy(shared=True), preload=False)
        shown = service.public(text)
    assert "box.lan" not in shown and "10.0.0.7" not in shown, shown
    assert "host 1" in shown or "host 2" in shown, shown


# -- rendering: what the render cache keeps -----------------------------------------------------

def test_the_render_cache_holds_its_limit_in_memory_whatever_the_texts_size():
    """The cache of rendered history texts counted only their characters: a reopened
    conversation (an unqueued event, up to 23 MB) of 160,000 two-character messages kept
    160,000 entries of ~500 bytes each for 1 MB of "source" (four of them, 640,000 entries
    and ~0.3 GB, all under the 8M-character limit)."""
    import tracemalloc

    from contextpilot.ui.render_markdown import _Cache

    limit = 200_000
    cache = _Cache(limit)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            cache.get(f"{i:x}", markdown=i % 2 == 0)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 10 * limit, (kept, len(cache.items))
    assert cache.get("a text", True) == cache.get("a text", True)  # still a cache
    assert ("a text" in {k[1] for k in cache.items})


@pytest.mark.parametrize("value", [7, True, 0.5])
def test_cancel_download_answers_a_value_that_is_not_text(shared, value):
    """``"@" in 7`` raised a TypeError: a traceback in the log and an "Error" for every
    crafted request, where every other handler answers."""
    assert call_event(shared, "cancel_download", value) == [
        "Choose a running download to cancel."]


# -- the advice after a failed download on a fleet -----------------------------------------------

ODD = "the registry answered something unexpected"  # kind "other": pull it by hand


def test_a_fleets_failed_download_advises_the_command_for_its_host(gpus, hosts_up):
    """``recent_pulls`` (the Downloads panel's rows) kept "ollama pull mistral:latest",
    which pulls on OLLAMA_HOST, not on the host where it failed; a chat's error already
    said "python -m contextpilot pull ... --host gpu2"."""
    a, b = hosts_up
    b.faults.pull_error = ODD
    with cp.Fleet({"gpu1": a.url, "gpu2": b.url}, probe_backoff=FAST_PROBES) as fleet:
        with pytest.raises(cp.PullFailed) as raised:
            for _ in fleet.pull_model("mistral", hosts="gpu2"):
                pass
        row = next(o for o in fleet.recent_pulls() if o.host == "gpu2")
    assert "--host gpu2" in str(raised.value), raised.value
    assert row.outcome == "failed" and ODD in row.message, row
    assert "python -m contextpilot pull mistral:latest --host gpu2" in row.message, row
    assert "ollama pull" not in row.message, row


def test_a_shared_fleets_failed_download_names_its_host_and_asks_the_operator(shared,
                                                                               hosts_up):
    """On a shared fleet the Downloads panel's failed row read "... ollama pull
    mistral:latest" with no host, and a chat's advice "--host host 2" (a label is not a
    command's argument, and a visitor cannot run the operator's commands)."""
    _, b = hosts_up
    b.faults.pull_error = ODD
    call_event(shared, "download", "mistral", False, "host 2", False)
    html = call_event(shared, "downloads_panel", None, {})[0]
    row = html[html.index('data-outcome="failed"'):]
    row = row[:row.index("</div>")]
    assert "mistral:latest</strong> on host 2" in row and ODD in row, row
    assert "ask the operator to pull mistral:latest on host 2" in row, row
    assert "--host" not in row and "ollama pull" not in row, row
    assert not _leaks(hosts_up, html), html

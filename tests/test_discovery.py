"""Size before download for any name: the registry's manifest (a fake registry on
127.0.0.1), the probe through the fake Ollama, cloud names, shared-app limits, make room."""

from __future__ import annotations


import time

import pytest

import contextpilot as cp
from contextpilot import fit
from contextpilot.fit import probe, registry as manifests, usage
from contextpilot.policy import AccessPolicy
from tests.fake_ollama import FakeModel
from tests.fake_registry import FakeRegistry

GiB = 2**30






def test_a_library_model_outside_the_catalog_is_sized_from_its_manifest(machine, registry,
                                                                        fake_ollama):
    total = registry.add("library/granite-code:8b", [4_600_000_000, 1_300, 120, 11_000])
    v = cp.check_fit("granite-code:8b", host=fake_ollama.url)
    assert (v.size_source, v.download_size) == ("registry", total)
    assert v.fits_disk is True and v.fits_memory is True
    assert v.message.startswith("granite-code:8b fits: a 4.6 GB download (100 GB free)")
    method, path, headers = registry.requests[-1]
    assert (method, path) == ("GET", "/v2/library/granite-code/manifests/8b")
    accept = {k.lower(): v for k, v in headers.items()}["accept"]
    assert accept == "application/vnd.docker.distribution.manifest.v2+json"
    assert fake_ollama.pull_requests == {}  # nothing downloaded


def test_a_missing_model_says_so_and_nothing_is_probed(machine, registry, fake_ollama):
    v = cp.check_fit("someone/nothing:here", host=fake_ollama.url)
    assert v.download_size is None and v.size_source == "unknown"
    assert v.message.startswith(f"The registry at {registry.url} has no model "
                                f"someone/nothing:here (check the name and tag).")
    assert fake_ollama.pull_requests == {}


@pytest.mark.parametrize("fault, words", [
    ("400", "answered 400: The specified tag is not a valid quantization scheme."),
    ("redirect-loop", "redirected too many times."),
    ("not-json", "sent something that is not a manifest."),
])
def test_registry_faults_give_a_clear_note(machine, registry, fake_ollama, fault, words):
    registry.add("library/odd:1b", [1_000_000])
    registry.faults["library/odd:1b"] = fault
    v = cp.check_fit("odd:1b", host=fake_ollama.url, probe=False)
    assert v.download_size is None and v.size_source == "unknown"
    assert words in v.message
    assert len([r for r in registry.requests if r[0] == "GET"]) <= manifests.MAX_REDIRECTS + 1


def test_a_redirect_is_followed(machine, registry):
    total = registry.add("library/moved:2b", [2_000_000_000, 400])
    registry.faults["library/moved:2b"] = "redirect"
    v = cp.check_fit("moved:2b", host="http://127.0.0.1:9", probe=False)
    assert (v.size_source, v.download_size) == ("registry", total)


def test_a_slow_registry_times_out(machine, registry, monkeypatch):
    monkeypatch.setattr(manifests, "REGISTRY_TIMEOUT", 0.3)
    registry.add("library/slow:1b", [1_000])
    registry.faults["library/slow:1b"] = "slow"
    v = cp.check_fit("slow:1b", host="http://127.0.0.1:9", probe=False)
    assert f"The registry at {registry.url} could not be reached (ReadTimeout)." in v.message


HUGE = FakeModel(name="llama3.1:405b-offline", layers=[243_000_000_000, 12_000, 500])


def test_offline_the_probe_reads_the_first_layer_and_stops_at_once(machine, fake_ollama,
                                                                    dead_host, monkeypatch,
                                                                    caplog):
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_URL", dead_host)  # the registry is unreachable
    fake_ollama.add_remote(HUGE)
    fake_ollama.event_delay = 0.01
    v = cp.check_fit(HUGE.name, host=fake_ollama.url)
    assert (v.size_source, v.download_size) == ("probe", 243_000_000_000)
    assert v.fits_disk is False and v.fits_memory is False
    assert "is a 243 GB download but only 100 GB is free" in v.message
    assert "read by starting the download and stopping it at once" in v.message
    assert fake_ollama.disconnected.wait(2), "the probe left the pull running"
    assert fake_ollama.pull_requests[HUGE.name] == 1
    assert fake_ollama.partial_bytes(HUGE.name) < 0.01 * HUGE.size  # under 1% downloaded
    assert HUGE.name not in fake_ollama.installed_names()
    # A probe is not a download the user started: not listed, not a failure, not kept.
    deadline = time.monotonic() + 5
    while cp.is_pulling(HUGE.name, fake_ollama.url) and time.monotonic() < deadline:
        time.sleep(0.01)  # the pull thread records outcomes as it ends; bounded
    assert not cp.is_pulling(HUGE.name, fake_ollama.url)
    assert [o.model for o in cp.recent_pulls(fake_ollama.url)] == []
    assert cp.active_pulls(fake_ollama.url) == []
    assert "failed" not in caplog.text


def test_the_probe_of_a_model_ollama_cannot_find(machine, fake_ollama):
    v = cp.check_fit("someone/custom:tag", host=fake_ollama.url)
    assert v.size_source == "unknown"
    assert "Ollama found no model someone/custom:tag in its registry" in v.message


@pytest.mark.parametrize("name", ["gpt-oss:120b-cloud", "qwen3-coder:480b-cloud",
                                  "deepseek-v3.1:671b-cloud"])
def test_cloud_models_are_never_checked(name, registry, fake_ollama):
    v = cp.check_fit(name, host=fake_ollama.url)
    assert v.cloud and "runs on ollama.com" in v.message
    assert v.download_size is None and v.fits_disk is None
    assert registry.requests == [] and fake_ollama.pull_requests == {}


def test_a_shared_app_never_contacts_a_host_a_visitor_named(machine, registry, fake_ollama):
    other = FakeRegistry().start()
    try:
        name = f"127.0.0.1:{other.url.rsplit(':', 1)[1]}/evil/model:tag"
        v = cp.check_fit(name, host=fake_ollama.url, trusted_only=True)
        assert v.download_size is None
        assert other.requests == [] and fake_ollama.pull_requests == {}
    finally:
        other.stop()


def test_a_shared_app_refuses_before_any_lookup(machine, registry, fake_ollama):
    from contextpilot.ui.service import Service

    service = Service(fake_ollama.url, AccessPolicy(shared=True, allowed_models=["llama3.2"]),
                      preload=False)
    note = service.note("someone/custom:tag")
    assert "not allowed on this shared app" in note
    assert registry.requests == [] and fake_ollama.pull_requests == {}


def test_make_room_names_the_least_recently_used_first(machine, fake_ollama, tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_USAGE_FILE", str(tmp_path / "usage.json"))
    usage.record_use("qwen3:0.6b", when=2_000_000_000)  # chatted with recently
    machine["free"] = 1_000_000
    v = fit.fit_for_size("big:latest", 3_500_000, host=fake_ollama.url)
    assert v.fits_disk is False
    assert v.make_room == ("llama3.2:latest",)  # never used: the first to go
    assert "Removing llama3.2:latest (3.0 MB) would make room." in v.message
    both = fit.fit_for_size("big:latest", 5_000_000, host=fake_ollama.url)
    assert both.make_room == ("llama3.2:latest", "qwen3:0.6b")
    mine = fit.fit_for_size("llama3.2:latest", 2_000_000, host=fake_ollama.url)
    assert mine.make_room == ("qwen3:0.6b",)  # never the model being asked for
    assert fit.fit_for_size("big:latest", 10**9, host=fake_ollama.url).make_room == ()


def test_usage_file_survives_garbage(tmp_path, monkeypatch):
    path = tmp_path / "usage.json"
    monkeypatch.setenv("CONTEXTPILOT_USAGE_FILE", str(path))
    path.write_text("not json")
    assert usage.last_used() == {}
    usage.record_use("Mistral")
    assert list(usage.last_used()) == ["registry.ollama.ai/library/mistral:latest"]


def test_context_length_grows_the_memory_needed(machine):
    machine["ram"] = 16 * GiB
    small = cp.check_fit("llama3.1", host="http://127.0.0.1:9")
    big = cp.check_fit("llama3.1", host="http://127.0.0.1:9", context_length=131072)
    assert big.kv_cache == 2 * 32 * 8 * 128 * 131072 * 2 and big.context_length == 131072
    assert small.fits_memory is True and big.fits_memory is False
    assert "KV cache for a 131,072-token context" in big.message


RECS = [{"model": "gpt-oss:20b", "description": "OpenAI's open-weight model",
         "context_length": 8192, "max_output_tokens": 4096, "vram_bytes": 14_000_000_000,
         "required_plan": ""},
        {"model": "qwen3-coder:480b-cloud", "description": "Coding, on ollama.com",
         "context_length": 262144, "max_output_tokens": 65536, "vram_bytes": 0,
         "required_plan": "pro"}]


def test_ollamas_recommendations_come_first_with_their_memory_needs(fake_ollama):
    from contextpilot.ui.service import Service

    assert cp.recommended_models(fake_ollama.url) == []  # an older server: no such route
    fake_ollama.recommendations = RECS
    recs = cp.recommended_models(fake_ollama.url)
    assert [(r.model, r.vram_bytes, r.context_length) for r in recs] == [
        ("gpt-oss:20b", 14_000_000_000, 8192), ("qwen3-coder:480b-cloud", 0, 262144)]
    choices = Service(fake_ollama.url, AccessPolicy(shared=False), preload=False).models().choices()
    labels = [label for label, _ in choices]
    installed = len(fake_ollama.installed_names())
    assert labels[installed:installed + 2] == [
        "Recommended · gpt-oss:20b · needs 14 GB",
        "Cloud · qwen3-coder:480b-cloud · recommended by Ollama"]
    assert [v for _, v in choices].count("gpt-oss:latest") == 1  # still in the catalog part


def test_the_app_offers_to_make_room_with_a_confirmation(fake_ollama, roomy_machine,
                                                        monkeypatch):
    from tests.ui_helpers import call_event, running_app

    monkeypatch.setattr(roomy_machine, "free_disk", lambda path=None: 1_000_000)
    fake_ollama.add_remote(FakeModel(name="someone/mid:latest", layers=[3_500_000, 100]))
    fake_ollama.event_delay = 0.01
    with running_app(fake_ollama.url) as url:
        note = call_event(url, "refresh_models", "someone/mid")[2]  # probes once
        assert "Removing llama3.2:latest (3.0 MB) would make room." in note
        _, status = call_event(url, "ask_make_room", "someone/mid")
        assert status.startswith("Remove llama3.2:latest to make room for someone/mid")
        assert "llama3.2:latest" in fake_ollama.installed_names()  # not before confirming
        status = call_event(url, "make_room", "someone/mid")[2]
        assert status == "Deleted llama3.2:latest."
        assert fake_ollama.installed_names() == ["qwen3:0.6b"]


def test_a_shared_app_leaves_make_room_to_the_operator(fake_ollama, roomy_machine,
                                                      monkeypatch):
    from tests.ui_helpers import call_event, running_app

    monkeypatch.setattr(roomy_machine, "free_disk", lambda path=None: 1_000_000)
    fake_ollama.add_remote(FakeModel(name="someone/mid:latest", layers=[3_500_000, 100]))
    fake_ollama.event_delay = 0.01  # the probe stops before the end
    policy = AccessPolicy(shared=True, allowed_models=["someone/mid", "llama3.2", "qwen3:0.6b"])
    with running_app(fake_ollama.url, policy=policy) as url:
        call_event(url, "refresh_models", "someone/mid")
        _, status = call_event(url, "ask_make_room", "someone/mid")
        assert status == "Nothing needs removing for this model."
        call_event(url, "make_room", "someone/mid")  # a crafted request changes nothing
        assert sorted(fake_ollama.installed_names()) == ["llama3.2:latest", "qwen3:0.6b"]


def test_a_probe_has_a_deadline(machine, fake_ollama, monkeypatch):
    monkeypatch.setattr(probe, "PROBE_TIMEOUT", 0.3)
    fake_ollama.add_remote(FakeModel(name="someone/slow:latest", layers=[5_000_000]))
    fake_ollama.event_delay = 2.0  # "pulling manifest", then silence
    v = cp.check_fit("someone/slow", host=fake_ollama.url)
    assert v.download_size is None
    assert "Ollama did not announce the size within 0.3 s." in v.message
    assert fake_ollama.disconnected.wait(3)


def test_cloud_names_are_still_validated():
    assert cp.check_fit("gpt-oss:20b:cloud").cloud
    assert cp.check_fit("qwen3:cloud").cloud
    for bad in ("../x:cloud", "a b:cloud", "x:y:z:cloud"):
        with pytest.raises(cp.InvalidModelName):
            cp.check_fit(bad)


@pytest.mark.parametrize("bad", [0, -1, 10**9, "4096", 4096.5, True])
def test_a_bad_context_length_is_a_clear_error(bad):
    with pytest.raises(cp.InvalidRequest, match="The context length must be a whole number"):
        cp.check_fit("mistral", context_length=bad)

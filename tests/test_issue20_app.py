"""Issue 20 in the app, through the running app (gradio_client, the queue) and its Service:
what the chat, the picker, its note and the download card say."""

from __future__ import annotations

import pytest

import contextpilot as cp
from contextpilot.policy import AccessPolicy
from contextpilot.ui.service import Service
from tests.fake_ollama import FakeModel
from tests.test_issue20_core import REGISTRY_GONE
from tests.test_ui_api import answers, chat
from tests.ui_helpers import call_event

EMBED = FakeModel(name="nomic-embed-text:latest", layers=[274_000_000], family="nomic-bert",
                  parameter_size="137M", quantization="F16", capabilities=["embedding"])


def _texts(outputs) -> list[str]:
    """Every text an update carried (messages' contents, the bar, the note)."""
    found = []
    for out in outputs:
        for part in out if isinstance(out, (list, tuple)) else [out]:
            if isinstance(part, str):
                found.append(part)
            elif isinstance(part, list):
                found += [m.get("content", "") for m in part if isinstance(m, dict)]
    return found


# -- item 2: the chat says the library's words -----------------------------------------------

@pytest.mark.usefixtures("roomy_machine")
def test_item2_the_chat_says_why_a_download_failed_and_what_to_do(client, fake_ollama):
    fake_ollama.faults.disk_full()
    _, (messages, *_) = chat(client, "hi", "mistral")
    said = messages[-1]["content"]
    assert said.startswith("⚠️ Model 'mistral:latest' is not installed, and downloading it "
                           "failed (write <path>: no space left on device). Free some disk "
                           "space where Ollama keeps its models")
    assert "not found" not in said and "pull it manually" not in said


@pytest.mark.usefixtures("roomy_machine")
def test_item2_no_signed_url_reaches_the_chat_or_the_downloads_panel(client, app_url,
                                                                      fake_ollama):
    fake_ollama.faults.pull_error = REGISTRY_GONE
    updates, (messages, *_) = chat(client, "hi", "mistral")
    panel, *_ = call_event(app_url, "downloads_panel", None, [])
    for text in _texts(updates) + [messages[-1]["content"], panel]:
        assert "X-Amz" not in text and "sha256-" not in text, text
    assert "could not reach the model registry" in messages[-1]["content"]


# -- item 3: the card says a stall ------------------------------------------------------------

@pytest.mark.usefixtures("roomy_machine")
def test_item3_pull_lines_say_no_data_while_ollama_repeats_itself(client, fake_ollama,
                                                                   monkeypatch):
    import threading

    from contextpilot.pull import progress

    # seconds, so the test is short (raising=False: the test says why an older build fails)
    monkeypatch.setattr(progress, "STALL_NOTICE", 1.0, raising=False)
    fake_ollama.chunk_size, fake_ollama.event_delay = 200_000, 0.01
    fake_ollama.faults.stall_pull_after, fake_ollama.faults.stall_repeat = 1_000_000, True
    threading.Timer(2.5, fake_ollama.release).start()
    lines = list(client.submit("mistral", api_name="/pull_model"))
    stalled = [line for line in lines if "no data for" in line]
    assert stalled and all("left" not in line and "/s" not in line for line in stalled)
    assert stalled[0] == ("mistral:latest: Downloading 25% · 1.0 MB / 4.0 MB · no data for "
                          "1 s — Ollama is retrying")
    assert lines[-1] == "mistral:latest is ready (4.0 MB)."


# -- item 5: cloud switched off ---------------------------------------------------------------

def _cloud_setup(fake, disabled: bool) -> Service:
    fake.add_cloud(FakeModel(name="gpt-oss:20b", family="gptoss"))
    list(cp.pull_model("gpt-oss:20b-cloud", fake.url))  # the stub Ollama's pull writes
    fake.recommendations = [
        {"model": "qwen3:0.6b", "vram_bytes": 1_000_000_000},
        {"model": "gpt-oss:120b-cloud", "required_plan": "free"}]
    fake.cloud_disabled = disabled
    return Service(fake.url, AccessPolicy(shared=False), False)


@pytest.mark.usefixtures("roomy_machine")
def test_item5_cloud_switched_off_hides_cloud_picks_and_says_why(fake_ollama):
    service = _cloud_setup(fake_ollama, disabled=True)
    labels = [label for label, _ in service.models().choices()]
    cloud = [label for label in labels if label.startswith("Cloud")]
    assert cloud == ["Cloud · gpt-oss:20b-cloud · cloud is switched off on this Ollama"]
    for name in ("gpt-oss:120b:cloud", "gpt-oss:20b-cloud"):
        note = service.note(name)
        assert "cloud is switched off on this Ollama (OLLAMA_NO_CLOUD)" in note
        assert "signin" not in note and "sign in" not in note


@pytest.mark.usefixtures("roomy_machine")
def test_item5_cloud_on_still_offers_them(fake_ollama):
    service = _cloud_setup(fake_ollama, disabled=False)
    cloud = [label for label, _ in service.models().choices() if label.startswith("Cloud")]
    assert cloud == ["Cloud · gpt-oss:20b-cloud",
                     "Cloud · gpt-oss:120b-cloud · recommended by Ollama"]
    assert "sign in first" in service.note("gpt-oss:120b:cloud")


# -- item 7: the note under the picker while a model downloads --------------------------------

@pytest.mark.usefixtures("roomy_machine")
def test_item7_the_note_says_downloading_while_the_chat_downloads(client, fake_ollama):
    fake_ollama.chunk_size, fake_ollama.event_delay = 100_000, 0.02  # ~1 s download
    job = client.submit({"text": "hi", "files": []}, "mistral", api_name="/chat")
    outputs = list(job)
    notes = [out[3] for out in outputs if isinstance(out[3], str) and out[3]]
    assert notes and "mistral:latest is downloading now" in notes[0], notes
    assert not any("press Download" in n or "Download now" in n for n in notes[:-1])
    assert "mistral:latest is installed" in notes[-1]
    assert answers(outputs[-1][0]) == ["You said: hi"]


# -- today's releases: capabilities from /api/tags, models that cannot chat -------------------

def test_today_the_picker_reads_capabilities_from_the_list_not_one_show_each(app_url,
                                                                             fake_ollama):
    fake_ollama.requests.clear()
    dropdown, *_ = call_event(app_url, "refresh_models", None)
    shows = [r for r in fake_ollama.requests if r[1] == "/api/show"]
    assert shows == []  # /api/tags says them (today's servers)
    labels = [c[0] for c in dropdown["choices"]]
    assert "Installed · qwen3:0.6b · 1.5 MB · tools · thinking" in labels


def test_today_a_model_that_cannot_chat_is_marked_and_refused(client, app_url, fake_ollama):
    fake_ollama.add_installed(EMBED)  # the newest: still not the default model
    dropdown, _status, note, *_ = call_event(app_url, "refresh_models", None)
    labels = [c[0] for c in dropdown["choices"]]
    assert "Installed · nomic-embed-text:latest · 274 MB · embedding only" in labels
    assert dropdown["value"] != "nomic-embed-text:latest"
    _, (messages, *_) = chat(client, "hi", "nomic-embed-text")
    assert messages[-1]["content"] == (
        "⚠️ nomic-embed-text:latest is an embedding model: it turns text into vectors (for "
        "search and similarity) and cannot chat. Use it through Ollama's /api/embed "
        "(ollama.embed in Python). To chat, choose a chat model.")
    assert fake_ollama.chat_requests == []
    service = Service(fake_ollama.url, AccessPolicy(shared=False), False)
    assert "embedding only, it cannot chat" in service.note("nomic-embed-text")

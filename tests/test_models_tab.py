"""Model management, capabilities, the fit check and the downloads panel, through the
launched app: the public API (gradio_client) and, for the page's own handlers, the same
requests a browser sends to the queue."""

from __future__ import annotations

import base64

import pytest
from gradio_client import handle_file

import contextpilot as cp
from tests.fake_ollama import FakeModel
from tests.test_ui_api import _png, answers, chat, titled
from tests.ui_helpers import Client, call_event, running_app, wait_until

pytestmark = pytest.mark.usefixtures("roomy_machine")


def choice_values(dropdown_update):
    return [value for _label, value in dropdown_update["choices"]]


def test_delete_asks_for_confirmation_then_removes_the_model(app_url, fake_ollama):
    confirm, said = call_event(app_url, "ask_delete", "qwen3:0.6b")
    assert confirm["visible"] is True and "Click **Confirm delete**" in said
    assert "qwen3:0.6b:latest" not in fake_ollama.installed_names()
    assert "qwen3:0.6b" in fake_ollama.installed_names()  # nothing happens before Confirm

    confirm, said, table, disk, selected, chat_dropdown, *_ = call_event(
        app_url, "delete_model", "qwen3:0.6b")
    assert said == "Deleted qwen3:0.6b." and confirm["visible"] is False
    assert [row[0] for row in table["data"]] == ["llama3.2:latest"]
    assert disk == "1 model installed, 3.0 MB on disk."
    assert choice_values(selected) == ["llama3.2:latest"]
    labels = [label for label, _ in chat_dropdown["choices"]]
    assert "Installed · llama3.2:latest · 3.0 MB · tools" in labels
    assert "Download · qwen3:0.6b · 523 MB · tools · thinking" in labels  # back to the catalog
    assert fake_ollama.installed_names() == ["llama3.2:latest"]


def test_confirm_deletes_only_what_delete_asked_about(app_url, fake_ollama):
    """A page asks about qwen3, then its pick of llama3.2 lands after Confirm was clicked:
    Confirm (which deletes what is picked) deletes nothing."""
    page = "a-page-session"
    confirm, said = call_event(app_url, "ask_delete", "qwen3:0.6b", session=page)
    assert confirm["visible"] is True
    confirm, said, *rest = call_event(app_url, "delete_model", "llama3.2", session=page)
    assert said == ("⚠️ Nothing was deleted: Delete… asked about qwen3:0.6b, but another "
                    "model is picked now. Click Delete… again to delete it.")
    assert confirm["visible"] is False
    # what a crafted Confirm sends is not said back
    call_event(app_url, "ask_delete", "qwen3:0.6b", session=page)
    said = call_event(app_url, "delete_model", "<b>" + "x" * 10_000, session=page)[1]
    assert said.startswith("⚠️ Nothing was deleted:") and "xxx" not in said and "<b>" not in said
    assert sorted(fake_ollama.installed_names()) == ["llama3.2:latest", "qwen3:0.6b"]
    # asked again, about what is picked: deleted
    call_event(app_url, "ask_delete", "llama3.2", session=page)
    said = call_event(app_url, "delete_model", "llama3.2", session=page)[1]
    assert said == "Deleted llama3.2:latest."
    assert fake_ollama.installed_names() == ["qwen3:0.6b"]


def test_deleting_a_missing_model_says_so(app_url):
    _confirm, said, *rest = call_event(app_url, "delete_model", "mistral")
    assert said.startswith("⚠️ Model &#x27;mistral:latest&#x27; is not installed")


def test_load_and_unload_show_in_the_running_list(app_url, fake_ollama):
    said, running = call_event(app_url, "load_model", "llama3.2")
    assert said == "llama3.2:latest is loaded in memory."
    assert 'data-model="llama3.2:latest"' in running and "on the GPU" in running
    assert [m.name for m in cp.running_models(fake_ollama.url)] == ["llama3.2:latest"]
    said, running = call_event(app_url, "unload_model", "llama3.2")
    assert said == "llama3.2:latest was unloaded from memory."
    assert "No model is loaded in memory." in running
    assert cp.running_models(fake_ollama.url) == []


def test_think_off_sends_think_false(client, fake_ollama):
    job = client.submit({"text": "why?", "files": []}, "qwen3:0.6b", "", 0.7, 4096, False,
                        api_name="/chat")
    messages = job.result()[0]
    assert fake_ollama.chat_requests[-1]["think"] is False
    assert not titled(messages, "Thought for") and not titled(messages, "Thinking")
    assert answers(messages) == ["You said: why?"]
    _, (messages, *_) = chat(client, "why?", "qwen3:0.6b")  # Think is on by default
    assert fake_ollama.chat_requests[-1]["think"] is True
    assert titled(messages, "Thought for")


def test_think_is_not_sent_to_a_model_that_cannot_think(client, fake_ollama):
    _, (messages, *_) = chat(client, "hi", "llama3.2")
    assert answers(messages) == ["You said: hi"]
    assert "think" not in fake_ollama.chat_requests[-1]


def test_an_image_reaches_a_vision_model(client, fake_ollama, tmp_path):
    fake_ollama.add_installed(FakeModel(name="llava:latest", capabilities=["completion",
                                                                           "vision"]))
    png = tmp_path / "dot.png"
    png.write_bytes(_png())
    _, (messages, *_) = chat(client, "what is this?", "llava", [handle_file(str(png))])
    assert answers(messages) == ["You said: what is this?"]
    sent = fake_ollama.chat_requests[-1]["messages"][-1]
    assert sent["content"] == "what is this?"
    assert [base64.b64decode(i) for i in sent["images"]] == [_png()]


def test_an_unknown_model_is_downloaded_then_checked_for_vision(client, fake_ollama,
                                                                tmp_path):
    fake_ollama.add_remote(FakeModel(name="someone/tiny:latest", layers=[50_000, 100]))
    png = tmp_path / "dot.png"
    png.write_bytes(_png())
    _, (messages, *_) = chat(client, "see?", "someone/tiny", [handle_file(str(png))])
    assert fake_ollama.pull_requests["someone/tiny:latest"] == 1
    assert titled(messages, "Downloaded someone/tiny")
    assert "someone/tiny:latest cannot read images" in messages[-1]["content"]
    assert fake_ollama.chat_requests == []


def test_a_model_that_does_not_fit_on_disk_waits_for_the_override(client, fake_ollama,
                                                                   roomy_machine,
                                                                   monkeypatch):
    monkeypatch.setattr(roomy_machine, "free_disk", lambda path=None: 1_000_000_000)
    updates = list(client.submit("mistral", api_name="/pull_model"))
    assert "mistral:latest is a 4.1 GB download but only 1.0 GB is free" in updates[-1]
    assert "tick “Download anyway”" in updates[-1]
    _, (messages, *_) = chat(client, "hi", "mistral")
    assert "only 1.0 GB is free" in messages[-1]["content"]
    assert fake_ollama.pull_requests == {} and fake_ollama.chat_requests == []

    updates = list(client.submit("mistral", True, api_name="/pull_model"))
    assert updates[-1] == "mistral:latest is ready (4.0 MB)."  # the real 4 MB fits


def test_a_model_too_big_for_memory_needs_acknowledging(client, fake_ollama, roomy_machine,
                                                        monkeypatch):
    monkeypatch.setattr(roomy_machine, "total_memory", lambda: 4 * 10**9)
    _, (messages, *_) = chat(client, "hi", "mistral")
    assert ("mistral:latest needs about 4.7 GB of memory; this machine has 4.0 GB. It will "
            "be very slow or fail to load.") in messages[-1]["content"]
    assert fake_ollama.pull_requests == {}
    job = client.submit({"text": "hi", "files": []}, "mistral", "", 0.7, 4096, True, True,
                        api_name="/chat")
    assert answers(job.result()[0]) == ["You said: hi"]


def test_a_pulled_model_is_loaded_in_the_background(client, fake_ollama):
    updates = list(client.submit("mistral", api_name="/pull_model"))
    assert updates[-1] == "mistral:latest is ready (4.0 MB)."
    wait_until(lambda: [m.name for m in cp.running_models(fake_ollama.url)]
               == ["mistral:latest"], what="mistral to be loaded")


def test_preload_can_be_turned_off(fake_ollama, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_PRELOAD", "0")
    with running_app(fake_ollama.url) as url:
        client = Client(url, verbose=False)
        list(client.submit("mistral", api_name="/pull_model"))
        assert client.predict(api_name="/list_models")["installed"]
    assert cp.running_models(fake_ollama.url) == []


def test_the_downloads_panel_lists_and_cancels_any_running_pull(client, app_url,
                                                                 fake_ollama):
    fake_ollama.chunk_size, fake_ollama.event_delay = 20_000, 0.05  # ~10 s download
    job = client.submit({"text": "hi", "files": []}, "mistral", api_name="/chat")
    wait_until(lambda: cp.is_pulling("mistral", fake_ollama.url), what="the auto-pull")
    panel, which, _controls, _box, _seen, _timer = call_event(app_url, "downloads_panel", None,
                                                              [])
    assert 'data-model="mistral:latest"' in panel and which["value"] == "mistral:latest"
    (said,) = call_event(app_url, "cancel_download", "mistral:latest")
    assert said.startswith("Cancelled the download of mistral:latest")
    assert fake_ollama.disconnected.wait(2), "the pull stream to Ollama stayed open"
    messages = job.result()[0]
    assert "The download of 'mistral:latest' was cancelled. What was downloaded is kept" in \
        messages[-1]["content"]
    panel, *_ = call_event(app_url, "downloads_panel", None, [])
    assert "No download is running." in panel

"""The app's public API, through gradio_client against the launched app and the fake Ollama."""

from __future__ import annotations

import re
import struct
import time
import zlib

import pytest
from gradio_client import handle_file

from tests.fake_ollama import FakeModel
from tests.ui_helpers import Client, running_app, wait_until


def chat(client, text, model, files=()):
    """Every update /chat streamed, and the final one: (messages, download bar, dropdown,
    model note, status line)."""
    job = client.submit({"text": text, "files": list(files)}, model, api_name="/chat")
    updates = list(job)
    return updates, job.outputs()[-1]


def answers(messages):
    return [m["content"] for m in messages if not m.get("metadata")]


def titled(messages, title_start):
    return [m for m in messages if (m.get("metadata") or {}).get("title", "").startswith(
        title_start)]


def test_chat_endpoint_is_public_with_the_model_among_its_inputs(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(info) == {"/chat", "/list_models", "/pull_model"}
    names = [p["parameter_name"] for p in info["/chat"]["parameters"]]
    assert names == ["message", "model", "system", "temperature", "num_ctx", "think",
                     "download_anyway", "think_level", "host"]  # host: issue 18
    assert all(p["parameter_has_default"] for p in info["/chat"]["parameters"][2:])
    assert info["/chat"]["parameters"][-1]["parameter_default"] == "auto"


def test_chat_with_installed_model_streams_the_answer(client, fake_ollama):
    fake_ollama.token_delay = 0.03
    text = "one two three four five six seven eight nine ten"
    updates, (messages, _bar, _dropdown, _note, status) = chat(client, text, "llama3.2:latest")
    assert answers(messages) == [f"You said: {text}"]
    partial = {a for u in updates for a in answers(u[0])} - {f"You said: {text}"}
    assert any(f"You said: {text}".startswith(p) and p for p in partial), "no partial answer"
    assert "Ollama 0.33.0" in status
    assert fake_ollama.pull_requests == {}


def test_chat_with_missing_model_pulls_once_then_answers(client, fake_ollama):
    _, (messages, bar, _dropdown, note, _status) = chat(client, "hi", "mistral")
    assert fake_ollama.pull_requests["mistral:latest"] == 1
    download = titled(messages, "Downloaded mistral")
    assert download and download[0]["metadata"] == {"title": "Downloaded mistral — 100%",
                                                    "status": "done"}
    assert messages.index(download[0]) == 0 and answers(messages) == ["You said: hi"]
    assert 'aria-valuenow="100"' in bar and "Ready" in bar
    assert ">mistral:latest is installed (4.0 MB).<" in note
    installed = [m["name"] for m in client.predict(api_name="/list_models")["installed"]]
    assert "mistral:latest" in installed


def test_thinking_is_shown_apart_from_the_answer(client):
    _, (messages, *_) = chat(client, "why?", "qwen3:0.6b")
    assert messages[0]["metadata"] == {"title": "Thought for less than a second",
                                       "status": "done"}
    assert messages[0]["content"] == "Thinking about: why?"
    assert answers(messages) == ["You said: why?"]


def test_list_models_has_installed_then_catalog(client, fake_ollama):
    data = client.predict(api_name="/list_models")
    assert data["error"] == "" and data["version"] == "0.33.0"
    assert {m["name"] for m in data["installed"]} == {"llama3.2:latest", "qwen3:0.6b"}
    mistral = next(e for e in data["catalog"] if e["name"] == "mistral:latest")
    assert mistral["installed"] is False and mistral["size_text"] == "4.1 GB"
    llama = next(e for e in data["catalog"] if e["name"] == "llama3.2:latest")
    assert llama["installed"] is True


def test_pull_model_streams_progress_and_ends_with_the_result(client, fake_ollama):
    fake_ollama.chunk_size = 100_000
    updates = list(client.submit("mistral", api_name="/pull_model"))
    assert updates[0] == "mistral:latest: Pulling manifest"
    assert updates[-1] == "mistral:latest is ready (4.0 MB)."
    percents = [int(m) for u in updates for m in re.findall(r"Downloading (\d+)%", u)]
    assert percents and percents == sorted(percents)
    # 100% means ready: with every byte in, verifying and writing still say 99% (the last
    # "Downloading" may be lower: Ollama sends no final tick, the next step says it is done)
    assert any("Verifying sha256 digest 99%" in u for u in updates)
    assert any("Writing manifest 99%" in u for u in updates)
    assert fake_ollama.pull_requests["mistral:latest"] == 1
    assert "mistral:latest" in fake_ollama.installed_names()


def test_a_fast_pull_is_throttled_not_flooded(client, fake_ollama):
    fake_ollama.chunk_size = 400  # ~10,000 progress events from Ollama
    started = time.monotonic()
    updates = list(client.submit("mistral", api_name="/pull_model"))
    seconds = time.monotonic() - started
    steps = len({u.split(" ")[1] for u in updates})  # manifest, layers, verify, write...
    assert updates[-1] == "mistral:latest is ready (4.0 MB)."
    assert len(updates) <= 10 * seconds + 3 * steps + 3, (len(updates), seconds)


@pytest.mark.parametrize("name, expected", [
    ("../x", "Invalid model name '../x'"),
    ("nosuchmodel", "Model 'nosuchmodel:latest' was not found in the Ollama registry"),
])
def test_pull_model_refusals_are_readable(client, name, expected):
    updates = list(client.submit(name, api_name="/pull_model"))
    assert updates[-1].startswith(expected)


def test_chat_errors_come_back_as_messages(client, fake_ollama):
    _, (messages, *_) = chat(client, "hi", "../x")
    assert messages[-1]["content"].startswith("⚠️ Invalid model name '../x'")  # plain text
    _, (messages, *_) = chat(client, "hi", "nosuchmodel")
    assert "is not installed, and the Ollama registry has no such model" in \
        messages[-1]["content"]
    assert "ollama pull" not in messages[-1]["content"]


def test_ollama_down_is_reported_with_the_fix(dead_host):
    with running_app(dead_host) as url:
        client = Client(url, verbose=False)
        _, (messages, _bar, _dd, _note, status) = chat(client, "hi", "llama3.2")
        data = client.predict(api_name="/list_models")
    fix = f"Cannot connect to Ollama server at {dead_host}"
    assert messages[-1]["content"].startswith(f"⚠️ {fix}")
    assert "ollama serve" in messages[-1]["content"]
    assert fix in status and data["installed"] == [] and data["error"].startswith(fix)


def test_model_output_is_its_text_and_the_page_gets_it_inert(client, fake_ollama):
    from contextpilot.ui.safe_chatbot import SafeChatbot

    evil = '<img src=x onerror="alert(1)"> `<b>code</b>`'
    fake_ollama.add_installed(FakeModel(name="evil:latest", reply=lambda m: evil))
    _, (messages, *_) = chat(client, "hi", "evil")
    assert answers(messages) == [evil]  # the API gets the model's text, as written...
    shown = SafeChatbot().postprocess(messages).root[-1].content[0].text
    assert "<img" not in shown and "&lt;img" in shown  # ...the page only what the app made
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in shown


def test_image_for_a_model_without_vision_is_refused(client, fake_ollama, tmp_path):
    png = tmp_path / "dot.png"
    png.write_bytes(_png())
    _, (messages, *_) = chat(client, "what is this?", "llama3.2", [handle_file(str(png))])
    assert "llama3.2:latest cannot read images" in messages[-1]["content"]
    assert fake_ollama.chat_requests == []


def test_stop_closes_the_answer_stream_to_ollama(client, fake_ollama):
    fake_ollama.token_delay = 0.5  # a slow model: one token every half second
    job = client.submit({"text": " ".join(["word"] * 50), "files": []}, "llama3.2",
                        api_name="/chat")
    wait_until(lambda: fake_ollama.open_streams, what="the answer stream")
    job.cancel()
    assert fake_ollama.disconnected.wait(1), "the stream to Ollama stayed open"


def test_stop_closes_the_stream_to_a_silent_ollama(client, fake_ollama):
    fake_ollama.faults.chat_first_token_delay = 30  # loading: Ollama says nothing at all
    job = client.submit({"text": "hi", "files": []}, "llama3.2", api_name="/chat")
    wait_until(lambda: fake_ollama.chat_requests, what="the chat request")
    job.cancel()
    assert fake_ollama.disconnected.wait(1), "the stream to Ollama stayed open"


def test_one_users_download_does_not_block_another_users_chat(app_url, fake_ollama):
    fake_ollama.chunk_size, fake_ollama.event_delay = 50_000, 0.05  # ~4 s download
    alice, bob = Client(app_url, verbose=False), Client(app_url, verbose=False)
    slow = alice.submit({"text": "hi", "files": []}, "mistral", api_name="/chat")
    wait_until(lambda: fake_ollama.pull_requests["mistral:latest"], what="the pull")
    _, (messages, *_) = chat(bob, "quick", "llama3.2")
    assert answers(messages) == ["You said: quick"]
    assert not slow.done()
    slow.cancel()


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("configured,expected", [
    ("qwen3:0.6b", {"qwen3:0.6b"}), ("llama3.2", {"llama3.2"}),
    (None, {"llama3.2:latest", "qwen3:0.6b"}),  # otherwise an installed model
])
def test_the_default_model_is_configurable(fake_ollama, monkeypatch, configured, expected):
    from tests.ui_helpers import call_event

    if configured:
        monkeypatch.setenv("CONTEXTPILOT_DEFAULT_MODEL", configured)
    with running_app(fake_ollama.url) as url:
        dropdown, *_ = call_event(url, "refresh_models", None)
    assert dropdown["value"] in expected
    labels = [c[0] for c in dropdown["choices"]]
    installed = ("Installed · llama3.2:latest · ", "Installed · qwen3:0.6b · ")
    assert labels[0].startswith(installed) and labels[1].startswith(installed)  # first
    assert any(label.startswith("Download · mistral · 4.1 GB") for label in labels[2:])


def test_history_goes_back_to_ollama_as_written():
    from contextpilot.ui.chat_handlers import ollama_history
    from contextpilot.ui.safe_chatbot import SafeChatbot

    answer = "a < b & `x &amp; y` and &lt;b&gt; <img src=x>"
    bot = SafeChatbot()
    shown = bot.postprocess([  # what the page gets, and sends back with the next message
        {"role": "user", "content": "what does &lt;b&gt; mean?"},
        {"role": "assistant", "content": answer},
        {"role": "assistant", "content": "⚠️ Cannot connect", "metadata": None},
        {"role": "assistant", "content": "thinking…", "metadata": {"title": "Thinking"}},
    ])
    assert ollama_history(bot.preprocess(shown)) == [
        {"role": "user", "content": "what does &lt;b&gt; mean?"},
        {"role": "assistant", "content": answer},
    ]


def test_a_huge_crafted_history_is_trimmed_to_the_newest_turns():
    from contextpilot.ui.chat_handlers import ollama_history

    history = [{"role": "user", "content": f"{i} " + "x" * 99_000} for i in range(50)]
    sent = ollama_history(history, budget=250_000)
    assert [m["content"].split()[0] for m in sent] == ["48", "49"]


def test_a_huge_crafted_history_of_answers_is_parsed_only_as_far_as_it_is_sent(mocker):
    from contextpilot.ui import render_markdown
    from contextpilot.ui.chat_handlers import HISTORY_BUDGET, ollama_history
    from contextpilot.ui.chatbot import shown_messages

    table = "|" * 1000 + "\n" + "|-" * 500 + "\n" + "|`<`" * 250  # slow to parse as Markdown
    history = [{"role": "assistant", "content": f"{table}{i:04}"} for i in range(5_000)]  # 12 MB
    spy = mocker.spy(render_markdown, "render_parts")
    sent = ollama_history(history)
    assert len(sent) == HISTORY_BUDGET // len(table + "0000")  # the newest that fit...
    assert spy.call_count == 0  # ...and nothing parsed to send them
    shown_messages(history)  # what the page is sent: Markdown only as far as the budget
    assert 0 < sum(len(c.args[0]) for c in spy.call_args_list) <= HISTORY_BUDGET


def test_a_slow_to_parse_answer_is_shown_less_often():
    import contextpilot as cp
    from contextpilot.ui import render
    from contextpilot.ui.chat_handlers import PARSE_SHARE, TOKEN_INTERVAL, paced
    from contextpilot.ui.chatbot import shown_messages

    view = render.ChatView("llama3.2")
    pace = paced(view)
    token = cp.ContentDelta(text="x")
    assert pace(token) == TOKEN_INTERVAL  # nothing rendered yet
    view.feed([token])
    view.answer = ["|" * 4000 + "\n" + "|-" * 2000 + "\n" + "|`<`" * 1000]  # slow to parse
    shown_messages(view.messages())  # the Chatbot renders each update
    assert view.parse_seconds > 0
    assert pace(token) == max(TOKEN_INTERVAL, view.parse_seconds * PARSE_SHARE)

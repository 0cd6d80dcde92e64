"""Shared or private is decided when the app is served (issue 13, part 1), and a public page is
set up for the public (part 3): the module-level ``demo`` of app.py, exactly as a Space,
``gradio app.py`` or a script imports it, launched here in different ways with no environment
variable saying anything; a notebook launch where Gradio turns sharing on by itself; the
status line naming the mode; the queue's bound; the upload limit; the upload cache cleanup;
the Downloads panel idle while nothing downloads.

Only 127.0.0.1 is contacted: a "public" server is bound to 0.0.0.0 and reached through it.
"""

from __future__ import annotations

import importlib.util
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import contextpilot as cp
from tests.test_attacks import REFUSED, no_tunnel, queue_call  # noqa: F401 (a fixture)
from tests.ui_helpers import call_event, free_port, wait_until

pytestmark = pytest.mark.usefixtures("roomy_machine")
ROOT = Path(__file__).resolve().parent.parent


def load_app_module(monkeypatch, fake):
    """app.py imported afresh, as a Space or ``gradio app.py`` does: its ``demo`` is built at
    import with no policy argument. Only OLLAMA_HOST is set (where Ollama is)."""
    for name in ("GRADIO_SHARE", "GRADIO_SERVER_NAME", "SPACE_ID", "SYSTEM",
                 "CONTEXTPILOT_ALLOWED_MODELS", "KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_HOST", fake.url)
    spec = importlib.util.spec_from_file_location(f"app_{uuid.uuid4().hex}", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def served(demo, **launch_kw) -> Iterator[str]:
    kw = dict(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    demo.launch(**{**kw, **launch_kw})
    try:
        yield f"http://127.0.0.1:{demo.server_port}"
    finally:
        demo.close()


@contextmanager
def operator_pull(fake, name: str = "mistral") -> Iterator[None]:
    """A download the operator started (through the library), running while the test acts."""
    fake.chunk_size, fake.event_delay = 10_000, 0.05  # ~20 s
    def pull() -> None:
        try:
            for _ in cp.pull_model(name, fake.url):
                pass
        except cp.PullCancelled:  # the test's own cancel, or the one at the end
            pass

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    wait_until(lambda: cp.is_pulling(name, fake.url), what="the operator's pull")
    try:
        yield
    finally:
        cp.cancel_pull(name, fake.url)
        thread.join(10)


def _requests(fake, path: str) -> list:
    return [r for r in fake.requests if r[1] == path]


def _unloads(fake) -> list:
    return [r for r in fake.requests if r[1] in ("/api/generate", "/api/chat")
            and isinstance(r[2], dict) and r[2].get("keep_alive") in (0, "0", "0s")]


# -- the module-level demo of app.py -------------------------------------------------------

def test_app_py_demo_on_0000_refuses_visitors_operator_actions(fake_ollama, monkeypatch):
    from tests.ui_helpers import Client

    demo = load_app_module(monkeypatch, fake_ollama).demo
    with served(demo, server_name="0.0.0.0") as url:  # a launch() argument, no env
        # downloads outside the allowlist (the installed models): the API, the button, chat
        said = list(Client(url, verbose=False).submit("mistral", True, api_name="/pull_model"))
        assert REFUSED in said[-1]
        assert REFUSED in queue_call(url, "download", "mistral", True)
        chat = Client(url, verbose=False).submit({"text": "hi", "files": []}, "mistral",
                                                 api_name="/chat").result()[0]
        assert REFUSED in chat[-1]["content"]
        # the operator's actions, as crafted queue events
        assert REFUSED in queue_call(url, "delete_model", "llama3.2")
        assert REFUSED in queue_call(url, "unload_model", "llama3.2")
        with operator_pull(fake_ollama):
            assert REFUSED in queue_call(url, "cancel_download", "mistral:latest")
            assert cp.is_pulling("mistral", fake_ollama.url)  # still running
    assert fake_ollama.installed_names() == ["llama3.2:latest", "qwen3:0.6b"]
    assert _requests(fake_ollama, "/api/delete") == [] and _unloads(fake_ollama) == []
    assert fake_ollama.pull_requests["mistral:latest"] <= 1  # only the operator's own pull
    assert fake_ollama.chat_requests == []


def test_app_py_demo_on_loopback_is_the_operators(fake_ollama, monkeypatch):
    demo = load_app_module(monkeypatch, fake_ollama).demo
    with served(demo, server_name="127.0.0.1") as url:
        status = call_event(url, "refresh_models", None)[1]
        assert 'data-mode="private"' in status and "Private" in status, status
        said = queue_call(url, "unload_model", "llama3.2")
        assert REFUSED not in said and len(_unloads(fake_ollama)) == 1
        assert "Deleted llama3.2:latest." in queue_call(url, "delete_model", "llama3.2")
        with operator_pull(fake_ollama):
            said = queue_call(url, "cancel_download", "mistral:latest")
            assert "Cancelled the download of mistral:latest" in said
        fake_ollama.chunk_size, fake_ollama.event_delay = 64_000, 0.0
        said = queue_call(url, "download", "mistral", True)  # not installed: allowed here
        assert REFUSED not in said
    assert "mistral:latest" in fake_ollama.installed_names()
    assert "llama3.2:latest" not in fake_ollama.installed_names()


def test_a_notebook_where_gradio_shares_by_itself_is_shared(fake_ollama, monkeypatch,
                                                            no_tunnel):  # noqa: F811
    from gradio import utils

    demo = load_app_module(monkeypatch, fake_ollama).demo
    monkeypatch.setattr(utils, "colab_check", lambda: True)  # Gradio's own share decision
    with served(demo, server_name="127.0.0.1") as url:  # no share argument: Gradio decides
        assert demo.share
        assert REFUSED in queue_call(url, "delete_model", "llama3.2")
        status = call_event(url, "refresh_models", None)[1]
        assert "Shared: downloads limited to llama3.2, qwen3:0.6b" in status, status
    assert "llama3.2:latest" in fake_ollama.installed_names()


def test_share_true_is_shared_even_when_the_tunnel_fails(fake_ollama, monkeypatch):
    from gradio import networking

    def no_internet(*args, **kwargs):
        raise ConnectionError("no internet")

    monkeypatch.setattr(networking, "setup_tunnel", no_internet)
    demo = load_app_module(monkeypatch, fake_ollama).demo
    with served(demo, server_name="127.0.0.1", share=True) as url:
        assert not demo.share  # Gradio gave up on the link...
        assert REFUSED in queue_call(url, "delete_model", "llama3.2")  # ...we did not
    assert "llama3.2:latest" in fake_ollama.installed_names()


def test_an_explicit_private_policy_wins_and_an_explicit_shared_one_too(fake_ollama):
    from contextpilot.policy import AccessPolicy
    from contextpilot.ui import build_app

    private = build_app(host=fake_ollama.url, policy=AccessPolicy(shared=False))
    with served(private, server_name="0.0.0.0") as url:  # the operator said so
        assert "Deleted qwen3:0.6b." in queue_call(url, "delete_model", "qwen3:0.6b")
    shared = build_app(host=fake_ollama.url,
                       policy=AccessPolicy(shared=True, allowed_models=["llama3.2"]))
    with served(shared, server_name="127.0.0.1") as url:
        assert REFUSED in queue_call(url, "delete_model", "llama3.2")
        status = call_event(url, "refresh_models", None)[1]
        assert "Shared: downloads limited to llama3.2" in status, status
    assert fake_ollama.installed_names() == ["llama3.2:latest"]


# -- a public page: the queue's bound, uploads ----------------------------------------------

@contextmanager
def full_queue(monkeypatch, fake, own_queue_call: bool = False) -> Iterator[tuple]:
    """app.py's demo with one answer slot, no line and room for one event in Gradio's
    queue, filled: one answer running (slowly), one waiting. Yields (url, client, first,
    second); at the end the answers are let through and must finish."""
    from contextpilot.ui import gradio_app
    from tests.ui_helpers import Client

    monkeypatch.setattr(gradio_app, "STREAM_CONCURRENCY", 1)  # one answer at a time,
    monkeypatch.setattr(gradio_app, "LINE_SIZE", 0)  # none waiting in the app's line,
    monkeypatch.setattr(gradio_app, "QUEUE_SIZE", 1)  # one in Gradio's queue
    demo = load_app_module(monkeypatch, fake).demo
    if own_queue_call:
        demo.queue()  # the notebook idiom; Gradio's queue() resets max_size to None
    fake.token_delay = 0.5  # each answer takes a few seconds
    with served(demo, server_name="127.0.0.1") as url:
        client = Client(url, verbose=False)
        first = client.submit({"text": "one two three four", "files": []}, "llama3.2",
                              api_name="/chat")
        wait_until(lambda: fake.chat_requests, what="the first answer starting")
        second = client.submit({"text": "two", "files": []}, "llama3.2", api_name="/chat")
        wait_until(lambda: second.status().code.name == "IN_QUEUE", what="the second waiting")
        yield url, client, first, second
        fake.token_delay = 0.0
        assert first.result(timeout=60)[0][-1]["content"].startswith("You said")
        second.result(timeout=60)


def test_beyond_the_queue_bound_a_visitor_is_told_to_try_again(fake_ollama, monkeypatch):
    with full_queue(monkeypatch, fake_ollama) as (url, client, _first, _second):
        said = queue_call(url, "chat", {"text": "three", "files": []})
        assert "HTTP 503" in said and "Queue is full" in said, said
        third = client.submit({"text": "three", "files": []}, "llama3.2", api_name="/chat")
        with pytest.raises(Exception, match="(?i)queue is full.*try again"):
            third.result(timeout=30)


def test_a_callers_own_queue_call_keeps_the_bound(fake_ollama, monkeypatch):
    with full_queue(monkeypatch, fake_ollama, own_queue_call=True) as (url, *_):
        said = queue_call(url, "chat", {"text": "three", "files": []})
    assert "HTTP 503" in said and "Queue is full" in said, said


def test_chats_beyond_the_answer_slots_wait_in_line_then_say_busy(fake_ollama, monkeypatch):
    from contextpilot.ui import gradio_app
    from tests.ui_helpers import Client

    monkeypatch.setattr(gradio_app, "STREAM_CONCURRENCY", 1)  # one answer at a time,
    monkeypatch.setattr(gradio_app, "LINE_SIZE", 2)  # two waiting in the line,
    monkeypatch.setattr(gradio_app, "LINE_PATIENCE", 2.0)  # for two seconds at most
    demo = load_app_module(monkeypatch, fake_ollama).demo
    fake_ollama.token_delay = 1.0  # the first answer takes longer than that
    with served(demo, server_name="127.0.0.1") as url:
        client = Client(url, verbose=False)
        first = client.submit({"text": "one two three four five", "files": []}, "llama3.2",
                              api_name="/chat")
        wait_until(lambda: fake_ollama.chat_requests, what="the first answer starting")
        waiting = client.submit({"text": "my question", "files": []}, "llama3.2",
                                api_name="/chat")
        wait_until(lambda: any("Waiting for a free slot" in str(o) for o in waiting.outputs()),
                   timeout=10, what="the line's place shown")
        said = waiting.result(timeout=30)[0]
        fake_ollama.token_delay = 0.0
        assert first.result(timeout=60)[0][-1]["content"].startswith("You said")
        again = client.submit({"text": "my question", "files": []}, "llama3.2",
                              api_name="/chat").result(timeout=30)[0]
    assert "next in line" in str(waiting.outputs())
    assert "ContextPilot is busy" in said[-1]["content"]
    assert "send it again" in said[-1]["content"]
    assert len(fake_ollama.chat_requests) == 2  # the busy one never reached Ollama
    assert again[-1]["content"] == "You said: my question"


def _upload(url: str, size: int) -> httpx.Response:
    files = {"files": ("big.png", b"\x89PNG" + b"\0" * (size - 4), "image/png")}
    return httpx.post(f"{url}/gradio_api/upload", files=files, timeout=60)


@pytest.mark.parametrize("how", ["launch-no-limit", "launch-raised", "mounted"])
def test_the_upload_limit_holds_however_the_app_is_served(fake_ollama, monkeypatch, how):
    import fastapi
    import gradio as gr
    import uvicorn

    demo = load_app_module(monkeypatch, fake_ollama).demo
    from contextpilot.policy import MAX_FILE_BYTES as limit

    if how == "mounted":
        app = gr.mount_gradio_app(fastapi.FastAPI(), demo, path="/")  # no max_file_size
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, 20, "uvicorn")
        url = f"http://127.0.0.1:{port}"
        try:
            too_big, fine = _upload(url, limit + 1), _upload(url, 1000)
        finally:
            server.should_exit = True
            thread.join(10)
    else:
        extra = {"max_file_size": None} if how == "launch-no-limit" else {"max_file_size": "1gb"}
        with served(demo, server_name="127.0.0.1", **extra) as url:
            too_big, fine = _upload(url, limit + 1), _upload(url, 1000)
    assert too_big.status_code == 413, (too_big.status_code, too_big.text[:200])
    assert fine.status_code == 200


def test_uploads_are_deleted_from_the_cache(fake_ollama, monkeypatch):
    from contextpilot.ui import gradio_app
    from contextpilot.ui.upload_names import real_path

    monkeypatch.setattr(gradio_app, "DELETE_CACHE", (1, 1))  # every second, older than 1 s
    demo = load_app_module(monkeypatch, fake_ollama).demo
    assert demo.delete_cache == (1, 1)
    with served(demo, server_name="127.0.0.1") as url:
        (name,) = _upload(url, 1000).json()
        path = real_path(name)  # visitors see uploads/..., not the server's folder
        assert Path(path).is_file()
        wait_until(lambda: not Path(path).exists(), timeout=15, what="the upload deleted")


def test_the_app_keeps_its_cleanup_and_limits_by_default():
    from contextpilot.ui import gradio_app

    frequency, age = gradio_app.DELETE_CACHE
    assert 0 < frequency <= 3600 and 0 < age <= 24 * 3600
    assert 0 < gradio_app.QUEUE_SIZE <= 256


def _look(url: str, session: str) -> list:
    """One tick of the Downloads panel, as the page's timer sends it, in ``session``."""
    import json

    from tests.ui_helpers import event_id

    body = {"data": [None, None], "fn_index": event_id(url, "downloads_panel"),
            "session_hash": session, "event_data": None, "trigger_id": None}
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/gradio_api/queue/join", json=body).raise_for_status()
        with http.stream("GET", "/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                msg = json.loads(line[5:]) if line.startswith("data:") else {}
                if msg.get("msg") == "process_completed":
                    return msg["output"]["data"]
    raise AssertionError("no answer")


def test_an_idle_look_at_the_downloads_panel_sends_nothing(fake_ollama):
    from tests.ui_helpers import running_app

    with running_app(fake_ollama.url) as url:
        session = uuid.uuid4().hex
        first = _look(url, session)
        again = _look(url, session)
        with operator_pull(fake_ollama):
            running = _look(url, session)
    assert "No download is running." in first[0]
    assert not isinstance(again[0], str) and "cp-" not in str(again), again  # no re-render
    assert 'data-model="mistral:latest"' in running[0]

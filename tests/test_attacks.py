"""Attacks on a shared app, as a visitor would make them: crafted requests to the queue
(any fn_index, private and hidden handlers included, any data and headers) and
gradio_client calls, against every way the app can be launched or mounted. Each test was
written to fail against the app before its fix (see the security notes in the README).

Only 127.0.0.1 is ever contacted; a "public" server is one bound to 0.0.0.0 (or launched
with a share link whose tunnel is faked) and reached through 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import fastapi
import gradio as gr
import httpx
import pytest
import uvicorn

from contextpilot.policy import AccessPolicy
from contextpilot.ui import build_app
from tests.fake_ollama import FakeModel
from tests.test_ui_api import _png
from tests.ui_helpers import event_id, free_port, queue_text, running_app, wait_until

pytestmark = pytest.mark.usefixtures("roomy_machine")
REFUSED = "not allowed on this shared app"
VISION = FakeModel(name="llava:latest", capabilities=["completion", "vision"],
                   reply=lambda msgs: f"{len(msgs[-1].get('images') or [])} image(s)")


# -- launching, every way -------------------------------------------------------------------

@contextmanager
def launched(fake, **launch_kw) -> Iterator[str]:
    """build_app() with no policy (as app.py does), then launch() as third-party code would."""
    demo = build_app(host=fake.url)
    kw = dict(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    kw.update(launch_kw)
    demo.launch(**kw)
    try:
        yield f"http://127.0.0.1:{demo.server_port}{launch_kw.get('root_path', '')}"
    finally:
        demo.close()


@contextmanager
def mounted(fake, bind: str = "0.0.0.0", **mount_kw) -> Iterator[str]:
    """gr.mount_gradio_app into FastAPI, served by uvicorn: launch() is never called."""
    demo = build_app(host=fake.url)
    app = gr.mount_gradio_app(fastapi.FastAPI(), demo, path="/", **mount_kw)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=bind, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def no_tunnel(monkeypatch):
    """share=True without the internet: the tunnel says it is up, nothing is contacted."""
    from gradio import networking

    monkeypatch.setattr(networking, "setup_tunnel",
                        lambda *a, **k: "https://attack-test.gradio.live")


def queue_call(url: str, api_name: str, *data, headers: Optional[dict] = None) -> str:
    """A crafted /queue/join for the handler ``api_name`` (private ones too), with our own
    headers; returns everything the server streamed back, as text."""
    session = uuid.uuid4().hex
    body = {"data": list(data), "fn_index": event_id(url, api_name), "session_hash": session,
            "event_data": None, "trigger_id": None}
    out = []
    with httpx.Client(base_url=url, timeout=30, headers=headers or {}) as http:
        joined = http.post("/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return f"HTTP {joined.status_code} {joined.text}"
        with http.stream("GET", "/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    out.append(line)
                    if json.loads(line[5:]).get("msg") == "process_completed":
                        break
    return "\n".join(out)


def chat_call(url: str, message: dict, model: str, download_anyway: bool = False) -> str:
    """A crafted request to the chat handler: our message, model and "Download anyway", every
    other input at its component's default (whatever inputs the chat has today)."""
    config = httpx.get(f"{url}/config", timeout=10).json()
    props = {c["id"]: c.get("props", {}) for c in config["components"]}
    dep = next(d for d in config["dependencies"] if d.get("api_name") == "chat")
    data = []
    for i in dep["inputs"]:
        elem = props[i].get("elem_id")
        data.append(message if elem == "chat-input" else model if elem == "model-dropdown"
                    else download_anyway if elem == "fit-override" else props[i].get("value"))
    return queue_call(url, "chat", *data)


def attempt_delete(url: str, fake, headers: Optional[dict] = None) -> None:
    """The hidden 'Confirm delete' handler, called directly: must be refused."""
    said = queue_call(url, "delete_model", "llama3.2", headers=headers)
    assert "not allowed on this shared app" in said, said[-400:]
    assert "llama3.2:latest" in fake.installed_names()


def attempt_pull(url: str, fake, headers: Optional[dict] = None) -> None:
    said = queue_call(url, "download", "mistral", True, headers=headers)
    assert REFUSED in said, said[-400:]
    assert fake.pull_requests == {}


# -- 1. launch paths: is the app shared, whoever launched it? -------------------------------

def test_launch_on_0000_after_build_is_shared(fake_ollama):
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        attempt_delete(url, fake_ollama)
        attempt_pull(url, fake_ollama)


def test_gradio_server_name_env_is_shared(fake_ollama, monkeypatch):
    # `GRADIO_SERVER_NAME=0.0.0.0 python app.py`: Gradio reads it at import, app.py's
    # module-level build_app() sees it too (not vulnerable before; kept as a regression test)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    demo = build_app(host=fake_ollama.url)
    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    try:
        attempt_delete(f"http://127.0.0.1:{demo.server_port}", fake_ollama)
    finally:
        demo.close()


def test_share_link_after_build_is_shared(fake_ollama, no_tunnel):
    with launched(fake_ollama, server_name="127.0.0.1", share=True) as url:
        attempt_delete(url, fake_ollama)


def test_queue_then_launch_is_shared(fake_ollama):
    demo = build_app(host=fake_ollama.url)
    demo.queue().launch(prevent_thread_lock=True, server_name="0.0.0.0",
                        server_port=free_port(), quiet=True)
    try:
        attempt_delete(f"http://127.0.0.1:{demo.server_port}", fake_ollama)
    finally:
        demo.close()


def test_kaggle_like_notebook_is_shared(fake_ollama, monkeypatch, no_tunnel):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")  # Gradio shares by itself
    with launched(fake_ollama, server_name="127.0.0.1") as url:
        attempt_delete(url, fake_ollama)


def test_space_env_at_request_time_is_shared(fake_ollama, monkeypatch):
    demo = build_app(host=fake_ollama.url)
    monkeypatch.setenv("SPACE_ID", "someone/contextpilot")
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                quiet=True)
    try:
        attempt_delete(f"http://127.0.0.1:{demo.server_port}", fake_ollama)
    finally:
        demo.close()


def test_root_path_behind_a_proxy_is_shared(fake_ollama):
    with launched(fake_ollama, server_name="127.0.0.1", root_path="/cp") as url:
        attempt_delete(url.removesuffix("/cp"), fake_ollama)


def test_mounted_into_uvicorn_on_0000_is_shared(fake_ollama):
    with mounted(fake_ollama) as url:
        attempt_delete(url, fake_ollama)
        attempt_pull(url, fake_ollama)


def test_mounted_claiming_loopback_but_bound_to_0000_is_shared(fake_ollama):
    with mounted(fake_ollama, bind="0.0.0.0", server_name="127.0.0.1") as url:
        attempt_delete(url, fake_ollama)


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "203.0.113.9"},  # nginx / a tunnel in front of 127.0.0.1
    {"Forwarded": "for=203.0.113.9;proto=https"},
    {"Host": "contextpilot.attacker.example"},  # DNS rebinding, or a proxy passing Host
    {"Origin": "https://attacker.example"},  # a hostile page in the operator's browser
], ids=["x-forwarded-for", "forwarded", "host", "origin"])
def test_a_relayed_request_to_a_loopback_app_is_a_visitors(fake_ollama, headers):
    with running_app(fake_ollama.url) as url:
        attempt_delete(url, fake_ollama, headers=headers)


def test_a_plain_local_app_is_still_private(fake_ollama):
    with running_app(fake_ollama.url) as url:
        said = queue_call(url, "delete_model", "qwen3:0.6b")
    assert "Deleted qwen3:0.6b." in said
    assert fake_ollama.installed_names() == ["llama3.2:latest"]


# -- 2. hidden and private handlers on a public server ---------------------------------------

@pytest.mark.parametrize("api_name,data", [
    ("unload_model", ["llama3.2"]),
    ("cancel_download", ["llama3.2"]),
    ("ask_delete", ["llama3.2"]),
    ("download", ["mistral", True]),  # "Download anyway" set by the payload
])
def test_private_handlers_on_a_public_server_refuse(fake_ollama, api_name, data):
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        said = queue_call(url, api_name, *data)
    assert REFUSED in said, said[-400:]
    assert fake_ollama.pull_requests == {}


def test_auto_pull_in_chat_on_a_public_server_is_refused(fake_ollama):
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        said = chat_call(url, {"text": "hi", "files": []}, "mistral", True)
    assert REFUSED in said
    assert fake_ollama.pull_requests == {} and fake_ollama.chat_requests == []


def test_pull_model_api_on_a_public_server_is_refused(fake_ollama):
    from tests.ui_helpers import Client

    with launched(fake_ollama, server_name="0.0.0.0") as url:
        said = list(Client(url, verbose=False).submit("mistral", True, api_name="/pull_model"))
    assert REFUSED in said[-1] and fake_ollama.pull_requests == {}


# -- 3. files: only genuine uploads are read ------------------------------------------------

def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}


def _chat_with_files(url: str, *paths: str) -> str:
    return chat_call(url, {"text": "what is this?", "files": [_file(p) for p in paths]}, "llava", False)


def _sent_images(fake) -> list:
    return [img for body in fake.chat_requests for m in body.get("messages") or []
            for img in m.get("images") or []]


@pytest.fixture
def secret(tmp_path) -> Path:
    """A server file a visitor must never get sent to a model (an image, so a vision model
    would describe it)."""
    path = tmp_path / "operator-secret.png"
    path.write_bytes(_png())
    return path


def test_a_server_path_in_a_mounted_apps_chat_is_not_read(fake_ollama, secret):
    # mount_gradio_app never sets has_launched, so Gradio itself copies any path it is given
    fake_ollama.add_installed(VISION)
    with mounted(fake_ollama, bind="127.0.0.1", server_name="127.0.0.1") as url:
        said = _chat_with_files(url, str(secret))
    assert _sent_images(fake_ollama) == []
    assert "could not be used" in said or '"success":false' in said  # ours, or Gradio's


def test_a_file_in_gradios_cache_that_nobody_uploaded_is_not_read(fake_ollama, secret):
    from gradio.utils import get_upload_folder

    planted = Path(get_upload_folder()) / uuid.uuid4().hex / "planted.png"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(secret.read_bytes())  # e.g. a copy Gradio made of a server file
    fake_ollama.add_installed(VISION)
    with running_app(fake_ollama.url) as url:
        said = _chat_with_files(url, str(planted))
    assert _sent_images(fake_ollama) == []
    assert "could not be used" in said and str(planted) not in said


@pytest.mark.parametrize("kind", ["etc-passwd", "traversal", "symlink", "url"])
def test_crafted_file_paths_are_refused(fake_ollama, secret, kind):
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / f"link-{uuid.uuid4().hex}.png"
    link.symlink_to(secret)
    path = {"etc-passwd": "/etc/passwd",
            "traversal": f"{cache}/../../../../{secret}",
            "symlink": str(link),
            "url": "http://127.0.0.1:9/secret.png"}[kind]
    fake_ollama.add_installed(VISION)
    with running_app(fake_ollama.url) as url:
        said = _chat_with_files(url, path)
    assert _sent_images(fake_ollama) == []
    assert "root:" not in said and str(secret) not in said
    link.unlink()


def test_a_genuine_upload_is_still_sent(fake_ollama, tmp_path):
    from gradio_client import handle_file

    from tests.ui_helpers import Client

    png = tmp_path / "dot.png"
    png.write_bytes(_png())
    fake_ollama.add_installed(VISION)
    with running_app(fake_ollama.url) as url:
        job = Client(url, verbose=False).submit(
            {"text": "what is this?", "files": [handle_file(str(png))]}, "llava",
            api_name="/chat")
        messages = job.result()[0]
    assert messages[-1]["content"] == "1 image(s)"
    assert len(_sent_images(fake_ollama)) == 1


def test_the_repository_is_not_served(fake_ollama):
    root = Path(__file__).resolve().parent.parent
    with running_app(fake_ollama.url) as url:
        for path in (root / "app.py", root / "contextpilot" / "policy.py", Path.home()):
            r = httpx.get(f"{url}/gradio_api/file={path}", timeout=10)
            assert r.status_code in (403, 404), (path, r.status_code)


# -- 4. cloud models and visitor-named hosts ------------------------------------------------

def test_a_cloud_model_is_not_used_on_a_shared_app_unless_allowlisted(fake_ollama):
    fake_ollama.add_cloud(FakeModel(name="gpt-oss:120b"))  # on ollama.com, no pull needed
    policy = AccessPolicy(shared=True, host=fake_ollama.url)  # allowlist: installed models
    with running_app(fake_ollama.url, policy=policy) as url:
        said = chat_call(url, {"text": "hi", "files": []}, "gpt-oss:120b-cloud", False)
    assert "Cloud model" in said and "ollama.com account" in said
    assert fake_ollama.chat_requests == []


def test_an_allowlisted_cloud_model_answers(fake_ollama):
    fake_ollama.add_cloud(FakeModel(name="gpt-oss:120b"))
    policy = AccessPolicy(shared=True, allowed_models=["gpt-oss:120b-cloud"],
                          host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        said = chat_call(url, {"text": "hi", "files": []}, "gpt-oss:120b-cloud", False)
    assert "You said: hi" in said


@pytest.fixture
def listener():
    """A socket on 127.0.0.1 that counts the connections made to it (an 'internal host')."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            hits.append(1)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1], hits
    stop.set()
    thread.join(2)
    sock.close()


def test_a_visitor_named_registry_host_is_never_contacted(fake_ollama, listener,
                                                          monkeypatch):
    port, hits = listener
    monkeypatch.setenv("CONTEXTPILOT_REGISTRY_LOOKUP", "1")  # the fit check may ask registries
    name = f"127.0.0.1:{port}/internal/secret:latest"
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        for api_name, data in (("model_changed", [name]), ("download", [name, False]),
                               ("refresh_models", [name])):
            queue_call(url, api_name, *data)
    assert hits == [] and fake_ollama.pull_requests == {}


# -- 5. hostile payloads and error texts ----------------------------------------------------

@pytest.mark.parametrize("name", [{"model": "x"}, ["llama3.2"], None, 7, "x" * 200_000,
                                  "../../../etc/passwd", "mistral\x00", "a/b/c/d"])
def test_hostile_model_names_pull_nothing(fake_ollama, name):
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        said = queue_call(url, "download", name, "yes")
        said += queue_call(url, "delete_model", name)
    assert fake_ollama.pull_requests == {} and len(fake_ollama.installed_names()) == 2
    assert "Traceback" not in said


def test_unexpected_errors_do_not_leak_server_details(fake_ollama, monkeypatch):
    from contextpilot.ui.service import Service

    monkeypatch.setenv("OLLAMA_API_KEY", "sk-operator-secret")

    def boom(self, name):
        raise OSError(f"[Errno 13] Permission denied: '/home/operator/.ollama/id_ed25519' "
                      f"key={os.environ['OLLAMA_API_KEY']}")

    monkeypatch.setattr(Service, "capabilities", boom)
    with running_app(fake_ollama.url) as url:
        said = chat_call(url, {"text": "hi", "files": []}, "llama3.2", False)
    assert "Something went wrong on the server" in said
    assert "sk-operator-secret" not in said and "/home/operator" not in said


# -- 6. the operator's login holds on every launch path --------------------------------------

def test_contextpilot_auth_holds_when_third_party_code_launches(fake_ollama, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_AUTH", "ada:s3cret")
    with launched(fake_ollama, server_name="127.0.0.1") as url:
        r = httpx.post(f"{url}/gradio_api/queue/join", timeout=10, json={
            "data": ["llama3.2"], "fn_index": 0, "session_hash": "x"})
        assert r.status_code == 401
        login = httpx.post(f"{url}/login", data={"username": "ada", "password": "s3cret"},
                           timeout=10)
        assert login.status_code == 200


def test_contextpilot_auth_holds_when_mounted_without_auth(fake_ollama, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_AUTH", "ada:s3cret")
    with mounted(fake_ollama, bind="127.0.0.1", server_name="127.0.0.1") as url:
        said = queue_call(url, "delete_model", "qwen3:0.6b")
        said += chat_call(url, {"text": "hi", "files": []}, "llama3.2", False)
    assert "requires a login" in said
    assert len(fake_ollama.installed_names()) == 2 and fake_ollama.chat_requests == []


# -- 7. operator-only side effects: the fit override, the server's own details ---------------

def test_download_anyway_is_the_operators_on_a_shared_app(fake_ollama, roomy_machine,
                                                          monkeypatch):
    monkeypatch.setattr(roomy_machine, "free_disk", lambda path=None: 1_000)  # nearly full
    policy = AccessPolicy(shared=True, allowed_models=["mistral"], host=fake_ollama.url)
    with running_app(fake_ollama.url, policy=policy) as url:
        said = queue_call(url, "download", "mistral", True)  # the hidden override, ticked
        said += chat_call(url, {"text": "hi", "files": []}, "mistral", True)
    assert "only the operator can download a model that may not fit" in said
    assert fake_ollama.pull_requests == {}


def test_the_status_line_does_not_show_a_visitor_server_paths(fake_ollama, mocker):
    from contextpilot import autostart

    fake_ollama.faults.refuse = True  # Ollama installed here but not running
    mocker.patch.object(autostart.shutil, "which", return_value="/opt/operator/bin/ollama")
    mocker.patch.object(autostart, "_spawn", side_effect=PermissionError(
        13, "Permission denied", "/opt/operator/bin/ollama"))
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        said = queue_call(url, "refresh_models", "llama3.2")
    assert "Could not start" in said and "/opt/operator" not in said



def _raw_call(url: str, fn_index: int, data: list) -> str:
    return queue_text(url, fn_index, data)


def test_a_server_path_in_a_mounted_apps_history_is_not_served_back(fake_ollama, secret):
    # Every event with the Chatbot among its inputs (ChatInterface's undo, retry, edit...)
    # takes a history any request may fill with FileData. On a mounted app (launch() never
    # ran) Gradio copied such a file into its cache and answered with a URL to download it.
    import re

    with mounted(fake_ollama, bind="127.0.0.1", server_name="127.0.0.1") as url:
        config = httpx.get(f"{url}/config", timeout=10).json()
        chatbots = {c["id"] for c in config["components"] if c.get("type") == "chatbot"}
        history = [{"role": "user", "content": [{"file": _file(str(secret))}]}]
        said = ""
        for dep in config["dependencies"]:
            if chatbots & set(dep["inputs"]):
                said += _raw_call(url, dep["id"], [history if i in chatbots else None
                                                   for i in dep["inputs"]])
        urls = set(re.findall(r'"url":"([^"]+)"', said))
        leaked = [u for u in urls if httpx.get(u if u.startswith("http") else url + u,
                                               timeout=10).content == secret.read_bytes()]
    assert leaked == [] and "gradio_api/file=" not in said


def test_a_refused_relative_path_does_not_reveal_the_working_directory(fake_ollama):
    fake_ollama.add_installed(VISION)
    with mounted(fake_ollama, bind="127.0.0.1", server_name="127.0.0.1") as url:
        said = _chat_with_files(url, "app.py")  # Gradio resolves it against its cwd
    assert os.getcwd() not in said and _sent_images(fake_ollama) == []


def test_the_cli_app_command_on_0000_is_shared(ollama_env, mocker):
    """`python -m contextpilot app --host 0.0.0.0` (an alias of serve) gets the shared rules."""
    import contextpilot.ui
    from contextpilot import cli

    build = mocker.patch.object(contextpilot.ui, "build_app")
    assert cli.main(["app", "--host", "0.0.0.0", "--no-autostart"]) == 0
    assert build.call_args.kwargs["policy"].shared
    assert build.return_value.launch.call_args.kwargs["server_name"] == "0.0.0.0"


def test_a_visitor_never_learns_the_ollama_address(fake_ollama):
    """With it, a visitor could use Ollama directly, past every rule of the app (a Space's
    OLLAMA_HOST secret pointing at an open Ollama)."""
    from tests.ui_helpers import Client

    address = fake_ollama.url.split("://")[1]
    with launched(fake_ollama, server_name="0.0.0.0") as url:
        said = queue_call(url, "refresh_models", "llama3.2")
        said += json.dumps(Client(url, verbose=False).predict(api_name="/list_models"))
        fake_ollama.faults.refuse = True  # Ollama goes away: the errors name no host either
        said += chat_call(url, {"text": "hi", "files": []}, "llama3.2", False)
        said += queue_call(url, "unload_model", "llama3.2")
        said += queue_call(url, "refresh", "llama3.2")
    assert "at the configured host" in said and address not in said


# -- a crafted history: bounded work, off the event loop ------------------------------------

def test_a_crafted_history_is_parsed_only_within_the_budget(mocker):
    # A visitor sends the history (the Chatbot's value syncs into the chat's state): parsing
    # Markdown costs ~0.3-2 s per 100,000 characters, so ten such turns beyond the budget
    # would cost the server seconds for nothing. Beyond it they are shown as text, unparsed.
    from contextpilot.ui import render_markdown
    from contextpilot.ui.chat_handlers import HISTORY_BUDGET, ollama_history
    from contextpilot.ui.safe_chatbot import SafeChatbot

    spy = mocker.spy(render_markdown, "render_parts")
    old = [{"role": "assistant", "content": "- `&`\n" * 16_000 + f"{i}"} for i in range(10)]
    new = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a &amp; b"}]
    bot = SafeChatbot()
    sent = ollama_history(bot.preprocess(bot.postprocess(old + new)), budget=1_000)
    assert sent == [{"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "a &amp; b"}]
    assert sum(len(c.args[0]) for c in spy.call_args_list) <= HISTORY_BUDGET


def test_the_history_is_read_off_the_event_loop(fake_ollama, monkeypatch):
    # While one chat's history is read, every other visitor's page still answers.
    from contextpilot.ui import chat_handlers
    from tests.ui_helpers import Client

    reading, done = threading.Event(), threading.Event()
    real = chat_handlers.ollama_history

    def slow(history, *args, **kwargs):
        reading.set()
        done.wait(20)  # a long crafted history, as long as the test needs
        return real(history, *args, **kwargs)

    monkeypatch.setattr(chat_handlers, "ollama_history", slow)
    with running_app(fake_ollama.url) as url:
        job = Client(url, verbose=False).submit({"text": "hi", "files": []}, "llama3.2",
                                                api_name="/chat")
        assert reading.wait(20), "the chat never read its history"
        try:
            page = httpx.get(f"{url}/config", timeout=5)
        except httpx.TimeoutException:
            page = None
        finally:
            done.set()
        assert page is not None and page.status_code == 200, "the server froze"
        assert job.result(timeout=30)[0][-1]["content"] == "You said: hi"


@pytest.fixture
def tls_mismatch(tmp_path, monkeypatch):
    """An https "Ollama" at 127.0.0.2 whose (trusted) certificate names another host: the TLS
    error then names the host it was not valid for, without scheme or port."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=other.example",
                    "-addext", "subjectAltName=DNS:other.example"],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert), str(key))
    server = socket.create_server(("127.0.0.2", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                tls.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.2:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


def test_a_tls_error_does_not_name_the_ollama_host(tls_mismatch, monkeypatch):
    monkeypatch.setenv("CONTEXTPILOT_AUTOSTART", "0")
    demo = build_app(host=tls_mismatch)
    demo.launch(prevent_thread_lock=True, server_name="0.0.0.0", server_port=free_port(),
                quiet=True)
    try:
        said = queue_call(f"http://127.0.0.1:{demo.server_port}", "refresh", "llama3.2")
    finally:
        demo.close()
    assert "TLS" in said and "the configured host" in said, said[-600:]
    assert "127.0.0.2" not in said, said[-600:]

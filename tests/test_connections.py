"""Idle and half-open connections are bounded (issue 19, item 3): `python app.py` in its own
process, with a small file limit (256, as on many machines 1024), and a client holding
hundreds of connections open that send nothing, or trickle a request head; a visitor's
page load is served all the same, within seconds. Fails against the app before the guard
(the server runs out of sockets and stops accepting)."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.ui_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
FILES = 256


def _small_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))


@pytest.fixture
def app_process(fake_ollama):
    port = free_port()
    env = dict(os.environ, OLLAMA_HOST=fake_ollama.url, GRADIO_SERVER_PORT=str(port),
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               HF_HUB_OFFLINE="1", CONTEXTPILOT_AUTOSTART="0", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            preexec_fn=_small_file_limit, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/config", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.2)
    yield url, psutil.Process(proc.pid)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _load(url: str, within: float):
    """The page, as a browser loads it: a connection the kernel resets while the server is
    full (its accept backlog overflowed) is tried again, as a browser does; None when no
    answer came ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=httpx.Timeout(deadline - time.monotonic()))
        except (httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError):
            time.sleep(0.1)  # a reset: the next attempt, as a browser's
        except httpx.TimeoutException:
            return None
    return None


def test_hundreds_of_idle_connections_do_not_lock_a_visitor_out(app_process):
    url, server = app_process
    port = int(url.rsplit(":", 1)[1])
    held = []
    try:
        for i in range(3 * FILES):  # more than the server has files for
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            held.append(s)
        time.sleep(0.5)
        for s in held[::10]:  # some trickle a request head, a byte at a time
            try:
                s.send(b"G")
            except OSError:
                pass
        t0 = time.monotonic()
        page = _load(url + "/", within=10)
        took = time.monotonic() - t0
        assert page is not None and page.status_code == 200 and took < 10, took
        assert server.num_fds() < FILES
    finally:
        for s in held:
            s.close()


def test_a_trickled_request_head_is_cut_off(app_process):
    url, _ = app_process
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30)
    t0 = time.monotonic()
    closed = False
    try:
        for ch in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            sock.send(bytes([ch]))
            time.sleep(0.5)
            if time.monotonic() - t0 > 25:
                break
    except OSError:
        closed = True
    if not closed:
        sock.settimeout(5)
        try:
            closed = sock.recv(100) == b""
        except OSError:
            closed = True
    sock.close()
    assert closed and time.monotonic() - t0 < 25


def test_every_launch_is_guarded(fake_ollama):
    from contextpilot.ui import build_app
    from tests.ui_helpers import launch

    demo = build_app(host=fake_ollama.url)
    launch(demo)
    try:
        config = demo.server.config
        assert getattr(config.http_protocol_class, "idle", None) is not None
        assert config.timeout_keep_alive <= 5
    finally:
        demo.close()


def test_on_a_space_the_visitors_address_is_the_last_public_one(monkeypatch):
    import uvicorn

    from contextpilot.ui.connections import guard_config

    monkeypatch.setenv("SPACE_ID", "someone/contextpilot")
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    config = uvicorn.Config(app=lambda *a: None)
    guard_config(config)
    config.load()
    proxies = config.loaded_app.trusted_hosts  # uvicorn's ProxyHeadersMiddleware
    # a visitor's own X-Forwarded-For entry, then the address the Space's proxy appended
    assert proxies.get_trusted_client_address("6.6.6.6, 203.0.113.9, 10.1.2.3")[0] == \
        "203.0.113.9"

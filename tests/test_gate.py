"""The gate in front of Gradio (issue 19, items 3 and 4): request bodies no larger than the
largest legitimate request, refused before they are read; attachments that name a URL
refused before anything is fetched; an upload usable only by the visitor who uploaded it.
Raw HTTP, as an attacker writes it; each test fails against the app before the gate."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from typing import Iterator, Optional

import httpx
import pytest

from contextpilot.policy import MAX_MESSAGE_CHARS
from contextpilot.ui.gate import EVENT_BODY_LIMIT, UPLOAD_BODY_LIMIT
from tests.test_attacks import VISION
from tests.test_ui_api import _png
from tests.test_uploads import chat_inputs, file_data, sent_images
from tests.ui_helpers import event_id, local_server, running_app

pytestmark = pytest.mark.usefixtures("roomy_machine")


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split(":")
    return host, int(port.split("/")[0])


def raw(url: str, head: str, body_parts: Iterator[bytes] = iter(())) -> str:
    """A request written by hand on a socket: the head, then body parts for as long as the
    server reads them; the status line and headers of its answer."""
    sock = socket.create_connection(_address(url), timeout=20)
    try:
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed: stop sending
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.decode("latin-1")
    finally:
        sock.close()


# -- bodies --------------------------------------------------------------------------------

def test_a_body_larger_than_any_legitimate_request_is_refused_unread(fake_ollama):
    with running_app(fake_ollama.url) as url:
        head = ("POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: 107000000\r\n\r\n")
        said = raw(url, head, iter([b"[" * 65536]))
        assert said.startswith("HTTP/1.1 413"), said[:200]
        # chunked, no length: refused once it passes the limit, not when it ends
        head = ("POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        part = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        parts = (part for _ in range(2 * EVENT_BODY_LIMIT // 0x10000 + 50))
        said = raw(url, head, parts)
        assert said.startswith("HTTP/1.1 413"), said[:200]
        assert httpx.get(f"{url}/config", timeout=10).status_code == 200  # still serving


def test_the_largest_legitimate_chat_and_uploads_still_pass(fake_ollama):
    # The longest message and system prompt, every character at its longest in JSON.
    fake_ollama.add_installed(VISION)
    worst = "\x01" * MAX_MESSAGE_CHARS
    with running_app(fake_ollama.url) as url:
        ups = httpx.post(f"{url}/gradio_api/upload", timeout=60, files=[
            ("files", (f"dot{i}.png", _png(), "image/png")) for i in range(8)])
        assert ups.status_code == 200 and len(ups.json()) == 8
        with httpx.Client(base_url=url, timeout=60) as http:
            data = chat_inputs(url, {"text": worst, "files": [file_data(p) for p in ups.json()]})
            data[3] = worst  # the system prompt
            body = {"data": data, "fn_index": event_id(url, "chat"),
                    "session_hash": uuid.uuid4().hex}
            size = len(json.dumps(body).encode())
            joined = http.post("/gradio_api/queue/join", json=body)
    assert joined.status_code == 200, joined.text[:300]
    assert 1_000_000 < size < EVENT_BODY_LIMIT
    assert UPLOAD_BODY_LIMIT > 8 * 20 * 2**20


# -- attachments that name a URL ------------------------------------------------------------

@pytest.fixture
def file_server():
    """An HTTP server on 127.0.0.1 that counts the requests it gets (a big file elsewhere)."""
    hits: list = []

    def respond(path: str) -> tuple[int, str, bytes]:
        hits.append(path)
        return 200, "image/png", _png()

    with local_server(respond) as port:
        yield port, hits


def test_an_attachment_naming_a_url_is_never_fetched(fake_ollama, file_server, monkeypatch):
    from gradio import processing_utils

    port, hits = file_server
    # Gradio fetches public addresses only: make "localhost" public, as a real URL would be.
    monkeypatch.setattr(processing_utils, "PUBLIC_HOSTNAME_WHITELIST",
                        [*processing_utils.PUBLIC_HOSTNAME_WHITELIST, "localhost"])
    fake_ollama.add_installed(VISION)
    said = []
    with running_app(fake_ollama.url) as url:
        for path in (f"http://localhost:{port}/big.png", f"HTTPS://localhost:{port}/x.png",
                     f"//localhost:{port}/y.png"):
            with httpx.Client(base_url=url, timeout=30) as http:
                said.append(chat_as(http, url, {"text": "what is this?",
                                                "files": [file_data(path)]}))
    assert hits == [] and sent_images(fake_ollama) == []
    assert all("HTTP 400" in s and "uploaded from this page" in s for s in said), said


# -- an upload belongs to its visitor ------------------------------------------------------

def visitor_client(url: str, local: Optional[str] = None) -> httpx.Client:
    """A browser-like visitor: keeps the cookie the app gives it (from another loopback
    address with ``local``)."""
    transport = httpx.HTTPTransport(local_address=local) if local else None
    http = httpx.Client(base_url=url, timeout=30, transport=transport)
    http.get("/config")
    return http


def chat_as(http: httpx.Client, url: str, message: dict, model: str = "llava") -> str:
    """A chat sent the way the page sends it (a queue join, then the session's stream), by
    the visitor ``http`` is: everything the app answered."""
    session = uuid.uuid4().hex
    data = [model if d == "llava" else d for d in chat_inputs(url, message)]
    joined = http.post("/gradio_api/queue/join", json={
        "data": data, "fn_index": event_id(url, "chat"), "session_hash": session})
    if joined.status_code != 200:
        return f"HTTP {joined.status_code} {joined.text}"
    out = []
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as s:
        for line in s.iter_lines():
            out.append(line)
            if '"process_completed"' in line:
                break
    return "\n".join(out)


@pytest.mark.parametrize("thief", ["other-browser", "other-address"])
def test_another_visitors_upload_cannot_be_sent_nor_fetched(fake_ollama, thief):
    fake_ollama.add_installed(VISION)
    with running_app(fake_ollama.url) as url:
        owner = visitor_client(url)
        (path,) = owner.post("/gradio_api/upload",
                             files={"files": ("mine.png", _png(), "image/png")}).json()
        other = visitor_client(url) if thief == "other-browser" else visitor_client(
            url, local="127.0.0.2")
        if thief == "other-address":
            other.cookies.clear()  # a caller that keeps no cookie: known by its address
        said = chat_as(other, url, {"text": "what is this?", "files": [file_data(path)]})
        assert sent_images(fake_ollama) == [], said[-300:]
        assert "could not be used" in said and path not in said.replace("\\/", "/")
        assert other.get(f"/gradio_api/file={path}").status_code == 404
        # the owner still can
        assert owner.get(f"/gradio_api/file={path}").status_code == 200
        said = chat_as(owner, url, {"text": "what is this?", "files": [file_data(path)]})
        owner.close()
        other.close()
    assert "1 image(s)" in said, said[-300:]
    assert sent_images(fake_ollama) == [base64.b64encode(_png()).decode()]


# -- the unqueued routes: a share of them per address ----------------------------------------

def test_one_address_runs_at_most_a_few_unqueued_events_at_once():
    """The page's unqueued events (/run/...: the saved conversations, megabytes each) run
    outside the queue and its share: an address gets UNQUEUED_AT_ONCE of them at a time, 429
    past it; another address is not held up, and each freed place is usable again."""
    import asyncio

    from contextpilot.ui.gate import UNQUEUED_AT_ONCE, Gate

    async def scenario():
        release, all_in = asyncio.Event(), asyncio.Event()
        inside = [0]

        async def slow_app(scope, receive, send):  # Gradio, answering a slow event
            inside[0] += 1
            if inside[0] == UNQUEUED_AT_ONCE:
                all_in.set()
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        gate = Gate(slow_app, blocks=None)

        async def post(client: str) -> int:
            statuses: list = []
            sent = iter([{"type": "http.request", "body": b'{"data": [0, []]}',
                          "more_body": False}])

            async def receive():
                return next(sent, {"type": "http.disconnect"})

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            scope = {"type": "http", "method": "POST", "path": "/gradio_api/run/predict",
                     "headers": [(b"content-type", b"application/json")],
                     "client": (client, 5000)}
            await gate(scope, receive, send)
            return statuses[0]

        held = [asyncio.create_task(post("10.0.0.1")) for _ in range(UNQUEUED_AT_ONCE)]
        await asyncio.wait_for(all_in.wait(), 5)  # each has its place and waits on the app
        over = await asyncio.wait_for(post("10.0.0.1"), 5)
        other = asyncio.create_task(post("10.0.0.2"))
        release.set()
        done = await asyncio.wait_for(asyncio.gather(*held, other), 5)
        again = await asyncio.wait_for(post("10.0.0.1"), 5)
        return over, done, again, gate._unqueued

    over, done, again, left = asyncio.run(scenario())
    assert over == 429
    assert done == [200] * (UNQUEUED_AT_ONCE + 1)
    assert again == 200 and left == {}


def test_the_app_keeps_fewer_sessions_state_than_gradios_default(fake_ollama):
    """Each new session's state holds what its page sent (megabytes of saved conversations):
    Gradio's 10,000 sessions let one visitor's fresh sessions hold gigabytes."""
    from contextpilot.ui import build_app
    from contextpilot.ui.gradio_app import STATE_SESSIONS
    from tests.ui_helpers import launch

    demo = build_app(host=fake_ollama.url)
    assert demo.state_session_capacity == STATE_SESSIONS < 10_000  # mounted, too
    launch(demo)
    try:
        assert demo.state_session_capacity == STATE_SESSIONS
    finally:
        demo.close()

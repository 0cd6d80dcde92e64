"""Launching the app for UI tests: a free port on 127.0.0.1, closed afterwards."""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from contextpilot.ui import build_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(host: str, **kwargs) -> Iterator[str]:
    """The app for the Ollama at ``host``, launched without blocking; yields its URL."""
    demo = build_app(host=host, **kwargs)
    url = launch(demo)
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


def launch(demo, tries: int = 3, **kwargs) -> str:
    """``demo.launch`` on a free port of 127.0.0.1, without blocking; its URL.

    Gradio checks that its page answers within 3 s and gives up at the first timeout ("When
    localhost is not accessible..."): on a loaded machine that is a false alarm, so it is
    tried again, a bounded number of times, on a new port."""
    for attempt in range(tries):
        try:
            _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1",
                                    server_port=free_port(), quiet=True, share=False, **kwargs)
            return url
        except ValueError as exc:
            demo.close()
            if "localhost is not accessible" not in str(exc) or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll a condition another thread makes true (e.g. a request reaching the fake server)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


def event_id(url: str, api_name: str) -> int:
    """The fn_index of an event handler (private ones too), from the app's config."""
    import httpx

    config = httpx.get(f"{url}/config", timeout=10).json()
    for dep in config["dependencies"]:
        if dep.get("api_name") == api_name:
            return dep["id"]
    raise KeyError(api_name)


def call_event(url: str, api_name: str, *data, first: bool = False) -> list:
    """A crafted request straight to the queue, as a browser would send it, for any event
    handler (private ones included): the handler's final outputs (a generator's first ones
    with ``first``; later ones may arrive as diffs)."""
    import json
    import uuid

    import httpx

    session = uuid.uuid4().hex
    body = {"data": list(data), "fn_index": event_id(url, api_name), "session_hash": session,
            "event_data": None, "trigger_id": None}
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/gradio_api/queue/join", json=body).raise_for_status()
        with http.stream("GET", "/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            last = None
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                output = msg.get("output") or {}
                if msg.get("msg") == "process_generating":
                    if first:
                        return output.get("data")
                    last = output.get("data")
                if msg.get("msg") == "process_completed":
                    if not msg.get("success", True) or "error" in output:
                        raise RuntimeError(output.get("error") or msg)
                    return output.get("data") or last
    raise RuntimeError("no result")


def queue_text(url: str, fn_index: int, data: list, session: str = "",
               check: bool = False) -> str:
    """A crafted queue request (``session``: a page's, else a new one) and every line of its
    event stream up to the end, as the raw text a browser would read (``check``: an HTTP
    error on joining raises)."""
    import uuid

    import httpx

    session = session or uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session,
            "event_data": None, "trigger_id": None}
    lines: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        joined = http.post("/gradio_api/queue/join", json=body)
        if check:
            joined.raise_for_status()
        with http.stream("GET", "/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                lines.append(line)
                if '"process_completed"' in line:
                    break
    return "\n".join(lines)


@contextmanager
def local_server(respond: Callable[[str], tuple[int, str, bytes]]) -> Iterator[int]:
    """Another web server on 127.0.0.1 (a file elsewhere, another site's page): GET answers
    ``respond(path)`` -> (status, content type, body); yields its port."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, ctype, body = respond(self.path)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()

"""Launching the app for UI tests (a free port on 127.0.0.1, closed afterwards) and talking to
it: gradio_client's Client with its waits bounded, the app's private events called directly."""

from __future__ import annotations

import socket
import time
from concurrent.futures import wait
from contextlib import contextmanager
from typing import Callable, Iterator

import gradio_client
import httpx
from gradio.exceptions import ServerFailedToStartError
from gradio_client.client import Job as _Job
from gradio_client.utils import Status

from contextpilot.ui import build_app

SETTLE_LIMIT = 10.0  # seconds a finished session's stream takes to close, at most
UPDATE_LIMIT = 120.0  # seconds between two updates of a job, at most


class Job(_Job):
    """gradio_client's Job, iterated with a bound: its own ``__next__`` polls for ever when the
    job ended without finishing (its future cancelled by a closed stream, see ``Client``)."""

    def __next__(self):
        deadline = time.monotonic() + UPDATE_LIMIT
        while True:
            with self.communicator.lock:
                outputs = self.communicator.job.outputs
                if len(outputs) > self._counter:
                    self._counter += 1
                    return outputs[self._counter - 1]
                finished = self.communicator.job.latest_status.code == Status.FINISHED
            if finished:
                raise StopIteration
            if self.future.done():
                with self.communicator.lock:
                    if len(self.communicator.job.outputs) > self._counter:
                        continue
                failed = self.future.exception() if not self.future.cancelled() else "cancelled"
                if failed is None:
                    raise StopIteration
                raise AssertionError(f"the job ended without finishing: {failed!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no update from the app in {UPDATE_LIMIT:.0f} s")
            time.sleep(0.002)


class Client(gradio_client.Client):
    """gradio_client's Client with one of its races closed, for tests that submit turn after
    turn in one session.

    When a session's last event completes, the server sends ``close_stream`` right after
    ``process_completed``. A submit made in between (the client has seen the completion, its
    reader not yet the close) is registered on the closing reader, which then hands it
    ``None``: the job is cancelled and ``Job.__next__`` polls for ever (seen here on a loaded
    machine: 2 of 4 runs of the thirty-sessions test). So a submit first waits, bounded, for
    the reader of a session with nothing pending to close, and its job iterates with a bound.
    Its requests wait up to a minute, not httpx's 5 s: a queue join on a loaded machine took
    longer (the job then failed with ReadTimeout before the app had a say).
    """

    def __init__(self, src: str, *args, httpx_kwargs: dict | None = None, **kwargs):
        httpx_kwargs = {"timeout": httpx.Timeout(60.0), **(httpx_kwargs or {})}
        super().__init__(src, *args, httpx_kwargs=httpx_kwargs, **kwargs)

    def submit(self, *args, **kwargs) -> Job:
        with self.pending_lock:
            closing = None if self.pending_messages_per_event else self.streaming_future
        if closing is not None:
            wait([closing], timeout=SETTLE_LIMIT)
        job = super().submit(*args, **kwargs)
        job.__class__ = Job  # the same object, iterated with a bound
        return job


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

    Gradio gives its server 5 s to start and its page 3 s to answer, and gives up at the
    first timeout (ServerFailedToStartError, "When localhost is not accessible..."): on a
    loaded machine that is a false alarm, so it is tried again, a bounded number of times, on
    a new port."""
    for attempt in range(tries):
        try:
            _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1",
                                    server_port=free_port(), quiet=True, share=False, **kwargs)
            return url
        except (ValueError, ServerFailedToStartError) as exc:
            demo.close()
            slow = isinstance(exc, ServerFailedToStartError) or (
                "localhost is not accessible" in str(exc))
            if not slow or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll a condition another thread makes true (e.g. a request reaching the fake server)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


def event_id(url: str, api_name: str) -> int:
    """The fn_index of an event handler (private ones too), from the app's config."""
    config = httpx.get(f"{url}/config", timeout=10).json()
    for dep in config["dependencies"]:
        if dep.get("api_name") == api_name:
            return dep["id"]
    raise KeyError(api_name)


def call_event(url: str, api_name: str, *data, first: bool = False, session: str = "") -> list:
    """A crafted request straight to the queue, as a browser would send it, for any event
    handler (private ones included): the handler's final outputs (a generator's first ones
    with ``first``; later ones may arrive as diffs). ``session``: a page's, else a new one."""
    import json
    import uuid

    session = session or uuid.uuid4().hex
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

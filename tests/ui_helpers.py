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
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1",
                            server_port=free_port(), quiet=True, share=False)
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll a condition another thread makes true (e.g. a request reaching the fake server)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)

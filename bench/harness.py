"""Processes and measuring tools for the benchmarks: the fake server, the apps, a counting
proxy, and a stats reader. Everything runs on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values) -> float:
    return statistics.median(values)


class Fake:
    """bench/fake_server.py in a child process; stdin closing stops it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([PY, str(ROOT / "bench" / "fake_server.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=ROOT)
        self.url = self.proc.stdout.readline().strip()
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def config(self, **kw) -> None:
        self.http.post("/bench/config", json=kw).raise_for_status()

    def reset(self) -> None:
        self.config(reset=True, token_delay=0.0, event_delay=0.0, release=True)

    def stats(self) -> dict:
        return self.http.get("/bench/stats").json()

    def wait_for(self, what, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.stats()
            if what(s):
                return s
            time.sleep(0.01)
        raise TimeoutError("the fake server never reached the expected state")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


class App:
    """A Gradio app script (app.py or bench/bare_app.py) in a child process."""

    def __init__(self, script: str, ollama_url: str) -> None:
        self.script = script
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, OLLAMA_HOST=ollama_url, GRADIO_SERVER_PORT=str(self.port),
                   GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
                   HF_HUB_OFFLINE="1", CONTEXTPILOT_REGISTRY_LOOKUP="0",
                   CONTEXTPILOT_AUTOSTART="0", PYTHONPATH=str(ROOT))
        self.started = time.monotonic()
        self.proc = subprocess.Popen([PY, script], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.startup = self._wait_page()
        self.ps = psutil.Process(self.proc.pid)

    def _wait_page(self, timeout: float = 60.0) -> float:
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the app exited during start-up")
            time.sleep(0.02)
        raise TimeoutError("the app did not answer")

    def rss_mb(self) -> float:
        procs = [self.ps, *self.ps.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 1e6

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class RssSampler:
    """The highest RSS of an app while a block runs (sampled every 50 ms)."""

    def __init__(self, app: App) -> None:
        self.app, self.peak, self._stop = app, 0.0, threading.Event()

    def __enter__(self) -> "RssSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.app.rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class Proxy:
    """A TCP proxy to ``upstream_port`` that counts the bytes sent back to the client and can
    cut every connection (a closed tab)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.down_bytes = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    with self._lock:
                        self.down_bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.cut()
        self.server.close()


def first_disconnect_after(fake: Fake, t0: float, before: int, timeout: float = 5.0
                           ) -> Optional[float]:
    """Seconds from ``t0`` to the fake server's first disconnect after ``before`` of them."""
    try:
        s = fake.wait_for(lambda s: s["disconnect_count"] > before, timeout)
    except TimeoutError:
        return None
    return s["disconnects"][before] - t0

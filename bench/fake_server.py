"""The fake Ollama server in its own process, for benchmarks.

In-process, the fake's threads would compete for the GIL with the code under test and distort
the ratios. ``python bench/fake_server.py`` prints its URL on the first line of stdout and serves
until stdin closes. Two extra routes drive it from the benchmark process:

- ``POST /bench/config`` with any of ``chunk_size``, ``event_delay``, ``token_delay`` and
  ``faults`` (a dict of fault switches); ``{"reset": true}`` turns every fault off.
- ``GET /bench/stats``: when each model's pull wrote "success" and every client disconnect,
  as ``time.monotonic()`` values (one system-wide clock on Linux, comparable across
  processes), plus the request counters, and for each ``cadence-*`` pull when each progress
  event was written, with its layer and byte count.

``cadence-*`` models are pulled at the real server's pace (server/download.go): a 60 ms
ticker reports each layer's bytes so far, with no final completed == total tick (the next
status line says the layer is done; a layer done within 60 ms sends nothing).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import fake_ollama as fo  # noqa: E402
from tests.fake_ollama import FakeModel, FakeOllama  # noqa: E402

PULL_EVENTS = 100_000
CHUNK = 1_000
PULL_MODELS = 24  # bench-pull-0 … : each run pulls a fresh one (a pulled model is installed)
CADENCE_MODELS = 8
CADENCE_LAYERS = [30_000_000, 12_000, 500]
CADENCE_RATE = 10_000_000  # bytes/s: the weights take 3 s, 50 reports
TICK = 0.06
TOKENS = {"tokens-2k": 2_000, "tokens-8k": 8_000, "tokens-600": 600, "tokens-100": 100,
          "tokens-1": 1}


def _words(n: int):
    text = " ".join(f"w{i % 1000}" for i in range(n))
    return lambda messages: text


CODE_SECTION = """Step {i}: compare `a < b && c` first.

1. In the list, a fenced block:

    ```html
    <p class="x">{i} & more</p>
    ```

| case | code |
|---|---|
| {i} | `x < {i} && y` |

    indented <code> {i} & done

"""


def _code(n: int):
    """A code-heavy Markdown answer of about ``n`` words: what makes the display parse slow."""
    per = len(CODE_SECTION.split())
    text = "".join(CODE_SECTION.format(i=i) for i in range(max(1, n // per)))
    return lambda messages: text


def models() -> tuple[list[FakeModel], list[FakeModel]]:
    installed = [FakeModel(name=f"{name}:latest", layers=[1_000, 100], reply=_words(n))
                 for name, n in TOKENS.items()]
    installed += [FakeModel(name=f"code-{k}k:latest", layers=[1_000, 100], reply=_code(k * 1000))
                  for k in (2, 8)]
    installed.append(FakeModel(name="echo:latest", layers=[1_000, 100]))
    remote = [FakeModel(name=f"bench-pull-{i}:latest", layers=[PULL_EVENTS * CHUNK, 1_000, 500])
              for i in range(PULL_MODELS)]
    remote.append(FakeModel(name="stall-pull:latest", layers=[10_000_000, 100]))
    remote += [FakeModel(name=f"cadence-{i}:latest", layers=CADENCE_LAYERS)
               for i in range(CADENCE_MODELS)]
    return installed, remote


def _cadence_layers(h, out, m: FakeModel, log: list) -> None:
    """download.go's pace: the bytes of each layer reported every 60 ms, never the last tick."""
    for digest, size in zip(m.digests, m.layers):
        start = time.monotonic()
        tick = start + TICK
        while True:
            h._wait(max(0.0, tick - time.monotonic()))
            done = int((time.monotonic() - start) * CADENCE_RATE)
            if done >= size:
                break
            out.emit(fo._progress(f"pulling {digest[7:19]}", digest, size, done), delay=0)
            log.append((time.monotonic(), digest, done))
            tick += TICK


def _cadence_pull(h, body: dict, log: list) -> None:
    n = fo.parse_name(body.get("model") or "")
    m = h.fake._remote[n.key]
    with h.fake._lock:
        h.fake.pull_requests[n.short] += 1
    out = fo._Out(h, True, 0.0)
    try:
        out.emit({"status": "pulling manifest"})
        _cadence_layers(h, out, m, log)
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            out.emit({"status": status}, delay=0)
        out.finish()
    finally:
        out.close()


def _install_instrumentation(fake: FakeOllama) -> dict:
    stats = {"success": {}, "disconnects": [], "cadence": {}}
    emit = fo._Out.emit

    def timed_emit(self, obj, delay=None):
        emit(self, obj, delay)
        if obj.get("status") == "success":
            stats["success"][self.h._bench_model] = time.monotonic()

    fo._Out.emit = timed_emit
    gone = fake._client_gone

    def timed_gone():
        stats["disconnects"].append(time.monotonic())
        gone()

    fake._client_gone = timed_gone
    pull = fo._Handler.h_pull

    def h_pull(self, body):
        self._bench_model = fo.parse_name(body.get("model") or body.get("name") or "").short
        if self._bench_model.startswith("cadence-"):
            return _cadence_pull(self, body, stats["cadence"].setdefault(self._bench_model, []))
        pull(self, body)

    def h_config(self, body):
        if body.get("reset"):
            fake.faults.reset()
        for key in ("chunk_size", "event_delay", "token_delay"):
            if key in body:
                setattr(fake, key, body[key])
        for key, value in (body.get("faults") or {}).items():
            setattr(fake.faults, key, value)
        if body.get("release"):
            fake.release()
        self._json(200, {"ok": True})

    def h_stats(self, body):
        self._json(200, {**stats, "disconnect_count": fake.disconnects,
                         "open_streams": fake.open_streams,
                         "pull_requests": dict(fake.pull_requests),
                         "chat_requests": len(fake.chat_requests)})

    # Go (and so Ollama) sets TCP_NODELAY on every connection; http.server does not, and its
    # separate header and body writes would then wait ~40 ms for a delayed ACK.
    fo._Handler.disable_nagle_algorithm = True
    fo._Handler.h_pull = h_pull
    fo._Handler.h_config = h_config
    fo._Handler.h_stats = h_stats
    fo._Handler.ROUTES = {**fo._Handler.ROUTES, ("POST", "/bench/config"): "h_config",
                          ("GET", "/bench/stats"): "h_stats"}
    return stats


def main() -> None:
    fake = FakeOllama()
    installed, remote = models()
    for m in installed:
        fake.add_installed(m)
    for m in remote:
        fake.add_remote(m)
    _install_instrumentation(fake)
    fake.chunk_size = CHUNK
    serve_until_stdin_closes(fake)


def serve_until_stdin_closes(fake) -> None:
    """Start ``fake``, print its URL (the parent reads it), serve until stdin closes."""
    fake.start()
    print(fake.url, flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    fake.stop()


if __name__ == "__main__":
    main()

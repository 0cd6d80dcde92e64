"""What a 100 MB request body costs the app (issue 19, item 3): `python app.py` in its own
process, its RSS before, at the peak while the body is sent, and 3 s after; the answer's
status and time. Two bodies: one long string, and many small items (a parsed JSON list of
numbers costs several times its size), each with a Content-Length and chunked.

    python bench/body_memory.py

Run it from another checkout to measure that code (the script measures the tree it is in).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.harness import App, Fake, RssSampler  # noqa: E402

SIZE = 100 * 10**6


def bodies() -> dict[str, bytes]:
    head, tail = b'{"fn_index": 10, "session_hash": "bench", "data": [', b"]}"
    text = head + b'"' + b"a" * SIZE + b'"' + tail
    items = head + b"[" + b"0," * (SIZE // 2) + b"0]" + tail
    return {"one string": text, "small items": items}


def send(url: str, body: bytes, chunked: bool) -> tuple[str, float]:
    content = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    t0 = time.monotonic()
    try:
        r = httpx.post(f"{url}/gradio_api/queue/join", content=content, timeout=120,
                       headers={"content-type": "application/json"})
        said = str(r.status_code)
    except httpx.HTTPError as exc:  # refused and closed while we were still sending
        said = type(exc).__name__
    return said, time.monotonic() - t0


def main() -> None:
    fake = Fake()
    app = App("app.py", fake.url)
    try:
        print(f"tree: {ROOT}")
        for name, body in bodies().items():
            for chunked in (False, True):
                time.sleep(1)
                before = app.rss_mb()
                with RssSampler(app) as peak:
                    said, took = send(app.url, body, chunked)
                time.sleep(3)
                after = app.rss_mb()
                how = "chunked" if chunked else "Content-Length"
                print(f"  {name:12} {how:14} -> {said:>16} in {took:5.1f} s; RSS "
                      f"{before:6.0f} MB before, {max(peak.peak, after):6.0f} MB peak, "
                      f"{after:6.0f} MB after", flush=True)
    finally:
        app.close()
        fake.close()


if __name__ == "__main__":
    main()

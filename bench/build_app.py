"""Building the app (``build_app``): Gradio makes a whole server app at every ``Blocks`` exit
and ``queue()`` while a page is built, each thrown away by the next; ``gate.app_made_once``
makes it once. The baseline is the same build in the same run with that switched off (what
Gradio does by itself). Every test that starts an app, and ``python app.py``, pays it.
Run alone: ``python bench/build_app.py``."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from contextpilot.ui import gate, gradio_app  # noqa: E402

Row = Callable[[str, str, str, str, bool], None]


def _build_times(n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        demo = gradio_app.build_app(host="http://127.0.0.1:9")  # nothing is asked of it
        times.append(time.perf_counter() - started)
        demo.close()
    return times


def bench_build(row: Row, quick: bool = False) -> None:
    print("build the app", flush=True)
    n = 3 if quick else 9
    _build_times(1)  # warm-up: imports, theme, caches
    made_once = gate.app_made_once
    gate.app_made_once = lambda blocks: contextlib.nullcontext()  # Gradio's own way
    try:
        baseline = statistics.median(_build_times(n))
    finally:
        gate.app_made_once = made_once
    ours = statistics.median(_build_times(n))
    row("build_app (median of %d)" % n, f"{ours * 1000:.0f} ms",
        f"Gradio's way {baseline * 1000:.0f} ms = {ours / baseline:.2f}x", "<= 0.75x",
        ours / baseline <= 0.75)


if __name__ == "__main__":
    from bench.report import ROWS, row, table  # noqa: F401

    started = time.monotonic()
    bench_build(row, quick="--quick" in sys.argv)
    sys.exit(table(started))

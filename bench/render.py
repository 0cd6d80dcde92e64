"""Rendering chat text (issue 19): a 50k, 100k and 200k-character answer rendered to safe HTML
(``render_markdown.render_parts``: markdown-it-py, then nh3), and how the time grows per
doubling (CPU time); then the same 200k answer streamed (rendered again after every ~200 characters, from
its memo, as the chat does). Run from bench/run.py, or alone: ``python bench/render.py``."""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contextpilot.ui.render_markdown import Memo, render_parts  # noqa: E402
from tests.test_markdown import HOSTILE  # noqa: E402

Row = Callable[[str, str, str, str, bool], None]
SIZES = (50_000, 100_000, 200_000)
PROSE = ("A context window is the text a model reads at once: the prompt, the history and the "
         "answer so far. *Longer* windows cost memory, and [the docs](https://ollama.com) "
         "explain `num_ctx`.\n\n")
CODE = ("Install it, then run:\n\n```python\nif a < b && c:\n    print('<p>%s</p>' % x)\n```\n\n"
        "- a `<list>` item with **bold** & more\n- another\n\n| key | value |\n|---|--:|\n"
        "| `a<b` | 1 |\n\n> a quote `x`\n\n")
# The hostile corpus but its deepest nesting (markdown-it reads 20 levels, then stops: the
# rest would not be parsed at all, which would flatter the figure).
HOSTILE_TEXT = "\n\n".join(v for k, v in HOSTILE.items() if k != "deep nesting") + "\n\n"
KINDS = {"prose": PROSE, "code-heavy": CODE, "hostile": HOSTILE_TEXT, "pathological ![": "!["}


def text_of(kind: str, size: int) -> str:
    unit = KINDS[kind]
    return (unit * (size // len(unit) + 1))[:size]


def timed(fn, repeats: int) -> float:
    """The fastest of ``repeats`` runs, each from a collected heap, in CPU time of this thread
    (``thread_time``: on a shared machine, wall time measures the others' load too)."""
    runs = []
    for _ in range(repeats):
        gc.collect()
        started = time.thread_time()
        fn()
        runs.append(time.thread_time() - started)
    return min(runs)


def bench_render(row: Row, quick: bool = False) -> None:
    print("0. rendering chat text", flush=True)
    repeats = 2 if quick else 7
    for kind in KINDS:
        t = {n: timed(lambda n=n: render_parts(text_of(kind, n)), repeats) for n in SIZES}
        growth = (t[200_000] / t[50_000]) ** 0.5  # per doubling, over both doublings
        row(f"render a {kind} answer: 50k / 100k / 200k characters",
            " / ".join(f"{t[n] * 1000:.0f} ms" for n in SIZES),
            f"{growth:.2f}x per doubling (50k->100k {t[100_000] / t[50_000]:.2f}x, "
            f"100k->200k {t[200_000] / t[100_000]:.2f}x)", "<= 2.2x per doubling",
            growth <= 2.2)
    text = text_of("code-heavy", 200_000)

    def stream() -> None:
        memo = Memo()
        for end in range(200, len(text) + 200, 200):
            render_parts(text[:end], memo)

    whole = timed(lambda: render_parts(text), repeats)
    streamed = timed(stream, 1)
    row("stream a 200k code-heavy answer (1,000 renders as it grows, from the memo)",
        f"{streamed:.2f} s in all ({streamed:.1f} ms per render)", f"one whole render "
        f"{whole * 1000:.0f} ms = "
        f"{streamed / whole:.1f} whole renders", "info", True)


if __name__ == "__main__":
    def show(name, figure, compare, target, ok):
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {figure} | {compare} | target {target}")

    bench_render(show, "--quick" in sys.argv)

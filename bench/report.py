"""The benchmarks' rows: each a measured figure, the baseline measured in the same run (or the
ratio to it), the target and whether it was met; printed as they come and as one table at the
end. One list per process: each benchmark script runs in its own."""

from __future__ import annotations

import time

ROWS: list[tuple[str, str, str, str, bool]] = []


def row(name: str, figure: str, compare: str, target: str, ok: bool) -> None:
    ROWS.append((name, figure, compare, target, ok))
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {figure} | {compare} | target {target}",
          flush=True)


def table(started: float) -> int:
    """Print every row as a Markdown table (for bench/RESULTS.md); the exit code: 1 when a
    target was missed."""
    failed = [r for r in ROWS if not r[4]]
    print(f"\n{len(ROWS) - len(failed)}/{len(ROWS)} targets met in "
          f"{time.monotonic() - started:.0f} s\n")
    print("| benchmark | figure | baseline / ratio | target | result |")
    print("|---|---|---|---|---|")
    for name, figure, compare, target, ok in ROWS:
        print(f"| {name} | {figure} | {compare} | {target} | {'PASS' if ok else 'FAIL'} |")
    return 1 if failed else 0

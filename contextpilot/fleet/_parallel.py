"""Calls to several hosts at once: one daemon thread per call, results kept as they come,
the wait bounded. A call that outlives the bound goes on in the background (each call is
bounded itself by the client's connect and read timeouts) and is reported as not done."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, Mapping, Optional, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True)
class Result(Generic[T]):
    """What one call gave: its value, or the exception it raised."""

    value: Optional[T] = None
    error: Optional[BaseException] = None


def run_all(calls: Mapping[K, Callable[[], T]], timeout: Optional[float] = None
            ) -> dict[K, Result[T]]:
    """Run every call at once; return the results of those that ended within ``timeout``
    seconds (all of them when None). A single call runs in the caller's thread."""
    if len(calls) == 1 and timeout is None:
        ((key, call),) = calls.items()
        return {key: _run(call)}
    results: dict[K, Result[T]] = {}
    done = threading.Condition()

    def worker(key: K, call: Callable[[], T]) -> None:
        result = _run(call)
        with done:
            results[key] = result
            done.notify_all()

    for key, call in calls.items():
        threading.Thread(target=worker, args=(key, call), name=f"fleet {key}",
                         daemon=True).start()
    deadline = None if timeout is None else time.monotonic() + timeout
    with done:
        while len(results) < len(calls):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            done.wait(left)
        return dict(results)


def _run(call: Callable[[], T]) -> Result[T]:
    try:
        return Result(value=call())
    except Exception as exc:  # handed to the caller, who decides what it means
        return Result(error=exc)

"""Pure progress math: fold Ollama's per-layer pull events into one whole-model value,
smooth speed and ETA with an injected clock, and throttle a stream of values.

Ollama's traps, handled here: no total up front (each layer's size appears when it starts),
``completed`` absent while 0, ``completed`` that shrinks on a retried part, and one aggregated
"pulling model" shape (no digest) for some models instead of per-layer events. Progress comes
from a 60 ms ticker (server/download.go) that sends no final completed == total report: a
layer's last report may stay below its size, so the next status line is what says the layer
is done. The fraction reaches 1.0 only at "success", so 100% means ready.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, Optional, TypeVar

from ..types import PullProgress

Clock = Callable[[], float]
T = TypeVar("T")

SPEED_WINDOW = 0.5
"Seconds of byte flow before a speed is reported (tqdm/rich: unknown until it means something)."
ALMOST_DONE = 0.999
"The largest fraction before Ollama says success (shown as 99%)."
SMOOTHING = 0.3
"Weight of the newest sample in the exponential moving average (tqdm's default)."


class ProgressFolder:
    """Turns raw pull events into monotonic whole-model ``PullProgress`` values."""

    def __init__(self, model: str, clock: Clock = time.monotonic,
                 known_partials: Optional[dict[str, int]] = None) -> None:
        self.model = model
        self._known = known_partials or {}
        self._clock = clock
        self._layers: dict[str, list[int]] = {}  # key -> [total, completed (clamped)]
        self._completed = 0
        self._total = 0
        self._fraction: Optional[float] = None
        self._resumed = 0
        self._speed: Optional[float] = None
        self._sample_t: Optional[float] = None
        self._sample_bytes = 0
        self._flow_start: Optional[float] = None
        self._current: Optional[str] = None  # the layer being downloaded

    def feed(self, status: str, digest: Optional[str], total: Optional[int],
             completed: Optional[int]) -> PullProgress:
        now = self._clock()
        key = (digest or status) if total else None
        if self._current is not None and key != self._current:
            self._finish_layer(self._current, now)  # a new line: the previous layer is done
        self._current = key
        if total and key is not None:
            layer = self._layers.get(key)
            if layer is not None and total == layer[0]:
                # the hot path: more bytes of the current layer
                new = completed if completed is not None and completed < total else (
                    total if completed is not None else 0)
                if new > layer[1]:
                    self._completed += new - layer[1]
                    layer[1] = new
                    self._grow_to(now)
            else:
                self._update_layer(key, layer, total, completed or 0, now)
        done = status == "success"
        if done:
            self._completed = max(self._completed, self._total)
            self._total = max(self._total, self._completed)
        return self._value(status, digest or "", done, now)

    def _finish_layer(self, key: str, now: float) -> None:
        layer = self._layers.get(key)
        if layer is not None and layer[1] < layer[0]:
            self._completed += layer[0] - layer[1]
            layer[1] = layer[0]
            self._grow_to(now)

    def _update_layer(self, key: str, layer: Optional[list], total: int, completed: int,
                      now: float) -> None:
        if layer is None:
            first = min(completed, total)
            self._layers[key] = [total, first]
            self._total += total
            self._completed += first
            # Resumed: only the part an interrupted pull left (known to this process). A
            # layer already on disk (reported complete at once: shared with another model, or
            # a repeated pull) is not a resume, and Ollama's first report of a fresh layer
            # comes ~60 ms into its download, so a nonzero first count alone proves nothing.
            if first < total:
                self._resumed += min(first, self._known.get(key, 0))
            return
        self._total += total - layer[0]  # an aggregated shape can revise its total
        layer[0] = total
        new = min(completed, total)
        if new > layer[1]:
            self._completed += new - layer[1]
            layer[1] = new
            self._grow_to(now)

    def _grow_to(self, now: float) -> None:
        if self._sample_t is None:
            self._sample_t = self._flow_start = now
            self._sample_bytes = self._completed
            return
        dt = now - self._sample_t
        if dt >= 0.1:  # sample at most 10 times a second; tiny dt makes noisy rates
            rate = (self._completed - self._sample_bytes) / dt
            self._speed = rate if self._speed is None else (
                SMOOTHING * rate + (1 - SMOOTHING) * self._speed)
            self._sample_t, self._sample_bytes = now, self._completed

    def _value(self, status: str, digest: str, done: bool, now: float) -> PullProgress:
        total, completed = self._total, self._completed
        if done:
            self._fraction = 1.0
        elif total:
            # below 1.0 until success: verifying and writing still follow the last byte
            f = min(completed / total, ALMOST_DONE)
            if self._fraction is None or f > self._fraction:
                self._fraction = f
        speed = self._speed
        start = self._flow_start
        if speed is not None and (done or start is None or now - start < SPEED_WINDOW):
            speed = None
        eta = 0.0 if done else (
            (total - completed) / speed if speed and total and completed <= total else None)
        return PullProgress._fast({
            "model": self.model, "status": status, "completed": completed, "total": total,
            "fraction": self._fraction, "speed": speed, "eta": eta, "done": done,
            "resumed_bytes": self._resumed, "digest": digest,
        })

    @property
    def layers(self) -> dict[str, tuple[int, int]]:
        """(total, completed) of every layer seen, by digest."""
        return {k: (t, c) for k, (t, c) in self._layers.items()}

def throttle(values: Iterable[T], interval: float = 0.1, clock: Clock = time.monotonic
             ) -> Iterator[T]:
    """Pass at most one value per ``interval`` seconds, but never drop the first value, the
    last one, a value whose ``status`` changed, or a ``done`` value.

    A value dropped in the middle is not lost for good: the last value held back is yielded
    when the source ends, so a consumer always sees where things finished.
    """
    last_sent_t: Optional[float] = None
    last_status: object = _NOTHING
    held: object = _NOTHING
    for value in values:
        status = getattr(value, "status", None)
        now = clock()
        if (last_sent_t is None or status != last_status or getattr(value, "done", False)
                or now - last_sent_t >= interval):
            held = _NOTHING
            last_sent_t, last_status = now, status
            yield value
        else:
            held = value
    if held is not _NOTHING:
        yield held  # type: ignore[misc]


_NOTHING = object()

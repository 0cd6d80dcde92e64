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
STALL_NOTICE = 3.0
"""Seconds without a new byte while downloading before a value says so (``stalled_for``):
real Ollama repeats the same ``completed`` every 60 ms while it retries a stalled part, so
the repeats are the evidence; the speed decays with them, and the ETA becomes unknown."""
RESUME_LEAD = 0.25
"""At most this many seconds of a layer's download come before its first report (Ollama's
60 ms ticker; the manifest's line is the start of the first layer)."""
RESUME_WINDOW = 0.3
"Seconds of a layer's flow measured before deciding whether its first report was resumed."


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
        self._sample_flow = 0
        self._flow_start: Optional[float] = None
        self._current: Optional[str] = None  # the layer being downloaded
        # Bytes seen arriving: every rise of the current layer's raw count, also below the
        # clamp (Ollama retries a part from 0). Resumed bytes in a first report never count.
        self._flow = 0
        self._raw = 0  # the current layer's newest raw count
        self._moved_t: Optional[float] = None  # when it last changed
        self._status = ""
        self._status_t: Optional[float] = None  # when the current status began
        self._began: Optional[float] = None  # when the status before it began
        self._first: Optional[tuple[str, int, float, float]] = None  # see _judge_resume
        self._rises = 0  # how many times the current layer's count rose (see _judge_resume)

    def feed(self, status: str, digest: Optional[str], total: Optional[int],
             completed: Optional[int]) -> PullProgress:
        now = self._clock()
        key = (digest or status) if total else None
        if status != self._status:
            self._began, self._status_t, self._status = self._status_t, now, status
        if key != self._current:
            if self._current is not None:
                self._finish_layer(self._current, now)  # a new line: that layer is done
            self._raw = 0
        self._current = key
        if total and key is not None:
            layer = self._layers.get(key)
            if layer is not None and total == layer[0]:
                # the hot path: more bytes of the current layer (or the same, repeated)
                raw = min(completed, total) if completed is not None else 0
                if raw != self._raw:
                    if raw > self._raw:
                        self._flow += raw - self._raw
                        self._rises += 1
                    self._raw, self._moved_t = raw, now
                    if raw > layer[1]:
                        self._completed += raw - layer[1]
                        layer[1] = raw
                if self._first is not None and now - self._first[2] >= RESUME_WINDOW:
                    self._judge_resume()
                self._sample(now)
            else:
                self._update_layer(key, layer, total, completed or 0, now)
        done = status == "success"
        if done:
            self._completed = max(self._completed, self._total)
            self._total = max(self._total, self._completed)
        return self._value(status, digest or "", done, now)

    def _finish_layer(self, key: str, now: float) -> None:
        if self._first is not None:
            self._judge_resume()
        layer = self._layers.get(key)
        if layer is not None and layer[1] < layer[0]:
            self._flow += max(layer[0] - self._raw, 0)  # the last tick's, never reported
            self._completed += layer[0] - layer[1]
            layer[1] = layer[0]
            self._sample(now)

    def _update_layer(self, key: str, layer: Optional[list], total: int, completed: int,
                      now: float) -> None:
        new = min(completed, total)
        if layer is None:
            self._layers[key] = [total, new]
            self._total += total
            self._completed += new
            self._raw, self._moved_t = new, now
            if 0 < new < total:  # bytes before any flow: resumed, or the first tick's
                self._first = (key, new, now, self._step_before(now))
                self._rises = 0
            return
        self._total += total - layer[0]  # an aggregated shape can revise its total
        layer[0] = total
        if new != self._raw:
            self._flow += max(new - self._raw, 0)
            self._rises += new > self._raw
            self._raw, self._moved_t = new, now
        if new > layer[1]:
            self._completed += new - layer[1]
            layer[1] = new
        self._sample(now)

    def _step_before(self, now: float) -> float:
        """When this layer's download began, as well as the stream tells: the line before
        (the manifest's, for the first layer), at most RESUME_LEAD ago."""
        before = self._began if self._began is not None else now
        return max(before, now - RESUME_LEAD)

    def _judge_resume(self) -> None:
        """Was the first report of a layer resumed, or the first tick's download? Resumed
        bytes were there before the download began: what the report says beyond what the
        layer's speed could have brought since then (``RESUME_LEAD`` at most). A partial an
        earlier pull in this process left (``known_partials``) is said as it was known, but
        only when the report shows Ollama kept it (after Ollama was killed, or another client
        removed or finished the partial, the download starts from zero).
        The times are when lines arrived here, and lines arrive in bursts when this process
        or the network is busy (the first report then seems to follow the manifest at once):
        so the first report must also exceed what one report brings (Ollama reports once a
        tick, whatever the arrival times), and the smaller of the two estimates counts."""
        assert self._first is not None
        key, first, t_first, t_began = self._first
        self._first = None
        rate = ((self._raw - first) / (self._moved_t - t_first)
                if self._moved_t is not None and self._moved_t > t_first
                and self._raw > first else None)
        known = self._known.get(key, 0)
        if rate is None:  # no second count: no evidence but the first one
            kept = float(first) if known and first >= known else 0.0
        else:
            per_report = (self._raw - first) / max(self._rises, 1)
            kept = min(first - rate * (t_first - t_began), first - per_report)
        if known:
            self._resumed += min(known, first) if kept >= known / 2 else 0
        elif rate is not None and kept >= first / 2:
            self._resumed += int(kept)

    def _sample(self, now: float) -> None:
        """A speed sample, at most 10 a second: every event counts, a repeat too (no new
        byte is a sample of 0), so the speed decays while Ollama retries a stalled part."""
        if self._sample_t is None:
            self._sample_t = self._flow_start = now
            self._sample_flow = self._flow
            return
        dt = now - self._sample_t
        if dt >= 0.1:  # tiny dt makes noisy rates
            rate = (self._flow - self._sample_flow) / dt
            self._speed = rate if self._speed is None else (
                SMOOTHING * rate + (1 - SMOOTHING) * self._speed)
            self._sample_t, self._sample_flow = now, self._flow

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
        stalled = None
        if not done and self._current is not None and self._moved_t is not None and (
                now - self._moved_t >= STALL_NOTICE):
            stalled = now - self._moved_t
        eta = 0.0 if done else (
            (total - completed) / speed
            if speed and total and completed <= total and stalled is None else None)
        return PullProgress._fast({
            "model": self.model, "status": status, "completed": completed, "total": total,
            "fraction": self._fraction, "speed": speed, "eta": eta, "done": done,
            "resumed_bytes": self._resumed, "digest": digest, "stalled_for": stalled,
            "host": "",
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

"""pull_model(): Ollama's pull stream as a plain generator of whole-model PullProgress values.

One pull per model per process: a second request for a model that is already downloading
attaches to the running pull (one HTTP stream, every consumer sees the same progress).
A pull ends on success, an error, cancel_pull(), the last consumer leaving, or the stall
limit — never on a total time limit, since a 40 GB model may take an hour.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Iterator, Optional

from . import _client, hardware, models
from .cancel import CancelToken
from .errors import InvalidRequest, PullCancelled, PullFailed
from .names import ModelName, parse_name
from .progress import Clock, ProgressFolder
from .types import PullProgress

log = logging.getLogger("contextpilot")

DEFAULT_STALL_TIMEOUT = 120.0
WAKE_INTERVAL = 0.01
"Seconds a consumer may lag behind byte-only updates (a step change wakes it at once)."
_END = object()
_CANCELLED = object()


def stall_timeout_default() -> float:
    """CONTEXTPILOT_STALL_TIMEOUT, else 120 seconds."""
    raw = os.environ.get("CONTEXTPILOT_STALL_TIMEOUT", "")
    try:
        return float(raw) if raw.strip() else DEFAULT_STALL_TIMEOUT
    except ValueError:
        return DEFAULT_STALL_TIMEOUT


class _Subscriber:
    """Where one consumer is in a job's values."""

    __slots__ = ("step_index", "seen", "cancelled")

    def __init__(self) -> None:
        self.step_index = 0  # next entry of job.steps to hand out
        self.seen = -1  # sequence number of the newest event this consumer has
        self.cancelled = False


class _PullJob:
    """One running HTTP pull, shared by every consumer of that model.

    Raw events of the same layer are cumulative, so only the newest one matters: the pull
    thread keeps it raw and a consumer folds it when it asks (a fast pull costs the pull
    thread one atomic store per event). Every change of step or layer is kept in
    ``steps`` and handed to every consumer in order, so none is ever skipped; a consumer
    slower than Ollama gets the newest value instead of a growing backlog.
    """

    def __init__(self, host: str, name: ModelName, stall_timeout: float, clock: Clock,
                 check_disk: bool = True, insecure: bool = False) -> None:
        self.host, self.name, self.model = host, name, name.display
        self.stall_timeout = stall_timeout
        client = _client.get_client(host, streaming=True)
        self.stream = _client.Stream(
            lambda: client.pull(self.model, insecure=insecure, stream=True))
        self.folder = ProgressFolder(self.model, clock, known_partials(host))
        self.latest: Optional[PullProgress] = None
        self.error: Optional[Exception] = None
        self.detached = False
        self.finished = threading.Event()
        self.steps: list[tuple[int, PullProgress]] = []
        # (seq, event): the newest raw event of the current layer. The pull thread replaces
        # it without a lock (one atomic store); consumers fold it, under the lock, when
        # its seq is newer than the last one folded.
        self._pending: Optional[tuple[int, Any]] = None
        self._folded = -1
        self._latest_seq = -1
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sleepers = 0
        self._last_change = time.monotonic()
        self._watching_bytes = True
        self.check_disk = check_disk and hardware.is_local_host(host) and (
            os.environ.get("CONTEXTPILOT_DISK_CHECK", "1") != "0")

    def start(self) -> None:
        log.info("Pulling Ollama model '%s'...", self.model)
        threading.Thread(target=self._run, name=f"pull {self.model}", daemon=True).start()
        threading.Thread(target=self._watch, name=f"stall {self.model}", daemon=True).start()

    # -- the pull thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._read()
            finally:
                with self._cond:
                    self._fold_pending()
            if not self.succeeded:
                raise PullFailed(self.model, "the download ended before Ollama reported success")
        except Exception as exc:  # every failure reaches every consumer as one of ours
            if not self.succeeded:  # an abort that lands after "success" changes nothing
                self.error = _client.pull_error(exc, self.host, self.model, self.stream)
                log.warning("Pulling Ollama model '%s' failed: %s", self.model, self.error)
        finally:
            if self.error is None:
                log.info("Successfully pulled Ollama model '%s'", self.model)
            self._close()

    @property
    def succeeded(self) -> bool:
        return bool(self.latest and self.latest.done)

    def _read(self) -> None:
        # The hot loop, one turn per raw event (100k for a big pull), in locals: the same
        # layer with more bytes is only stored for a consumer to fold when it asks (it
        # wakes by itself within WAKE_INTERVAL, so no thread switch is forced per event).
        key: object = None
        seq = -1
        for event in self.stream:
            seq += 1
            if (event.status, event.digest, event.total) == key:
                self._pending = (seq, event)  # the stall watchdog reads its byte count
                continue
            key = (event.status, event.digest, event.total)
            self._new_step(seq, event)

    def _new_step(self, seq: int, event: Any) -> None:
        """A new status, layer or size: fold it now and keep it for every consumer."""
        status = event.status or ""
        if status.startswith("error"):  # the newer registry client reports errors this way
            raise _client.status_error(status, self.model)
        with self._cond:
            self._last_change = time.monotonic()
            self._fold_pending()
            previous = self.latest
            value = self._fold(seq, event)
            if previous is None or previous.status != value.status:
                self.steps.append((seq, value))  # a new step or layer: never skipped
            self._watching_bytes = value.step not in ("verify", "write", "done")
            if self.check_disk and value.total > (previous.total if previous else 0):
                self._check_room(value)
            if self._sleepers:
                self._cond.notify_all()

    def _fold(self, seq: int, event: Any) -> PullProgress:
        value = self.folder.feed(event.status or "", event.digest, event.total,
                                 event.completed)
        self.latest, self._latest_seq, self._folded = value, seq, seq
        return value

    def _fold_pending(self) -> None:
        """Fold the newest raw event if it is new (call with the lock held)."""
        pending = self._pending
        if pending is not None and pending[0] > self._folded:
            self._fold(*pending)

    def _check_room(self, value: PullProgress) -> None:
        # A layer just announced its size (the first is the weights, nearly the whole
        # model): stop at once when what is left cannot fit, instead of filling the disk.
        missing = value.total - value.completed
        free = hardware.guard_disk()
        if free is not None and missing > free:
            self.abort(
                f"no space left on device: {hardware.gb(missing)} more is needed and only "
                f"{hardware.gb(free)} is free")
            raise PullFailed(self.model, "aborted for lack of disk space")

    def _deregister(self) -> None:
        """Leave the registry, so that a new request starts a new pull instead of joining
        one that is ending (a cancelled one must never hand its error to someone new)."""
        with _registry_lock:
            if _registry.get((self.host, self.name.key)) is self:
                del _registry[(self.host, self.name.key)]

    def abort(self, reason: str) -> None:
        self._deregister()
        self.stream.abort(reason)

    @property
    def joinable(self) -> bool:
        return not (self.stream.aborted or self.finished.is_set())

    def _close(self) -> None:
        models.invalidate_cache(self.host)
        _remember_partials(self.host, self.folder, success=self.error is None)
        self._deregister()
        with self._cond:
            self.finished.set()
            self._cond.notify_all()

    def _watch(self) -> None:
        # Liveness, not a deadline: no new bytes (nor a new step) for stall_timeout seconds
        # while downloading ends the pull. Verifying a big blob sends nothing for minutes and
        # is not a stall.
        tick = min(1.0, max(self.stall_timeout / 4, 0.05))
        seen: Optional[int] = None
        while not self.finished.wait(tick):
            pending = self._pending
            completed = pending[1].completed if pending is not None else None
            if completed != seen:  # new bytes of the current layer since the last look
                seen, self._last_change = completed, time.monotonic()
            idle = time.monotonic() - self._last_change
            if self._watching_bytes and idle > self.stall_timeout:
                self.abort(f"stalled: no new data for {self.stall_timeout:g} s")
                return

    # -- consumers -----------------------------------------------------------------------

    def subscribe(self) -> _Subscriber:
        sub = _Subscriber()
        with self._cond:
            if self.steps:  # a late joiner starts from where the pull is now
                sub.step_index = len(self.steps)
                sub.seen = self.steps[-1][0] - 1
                self._fold_pending()
                sub.seen = min(sub.seen, self._latest_seq - 1)
            self._subscribers.append(sub)
        return sub

    def next_value(self, sub: _Subscriber) -> object:
        """The next value for ``sub``: a step it has not seen, else the newest value, else
        wait. ``_END`` when the pull is over, ``_CANCELLED`` when its token fired."""
        with self._cond:
            while True:
                if sub.cancelled:
                    return _CANCELLED
                if sub.step_index < len(self.steps):
                    seq, value = self.steps[sub.step_index]
                    sub.step_index += 1
                    if seq > sub.seen:
                        sub.seen = seq
                        return value
                    continue
                pending = self._pending
                if (pending is not None and pending[0] > self._folded) or (
                        self._latest_seq > sub.seen):
                    self._fold_pending()
                    if self._latest_seq > sub.seen:
                        sub.seen = self._latest_seq
                        return self.latest
                if self.finished.is_set():
                    return _END
                self._sleepers += 1
                try:
                    self._cond.wait(WAKE_INTERVAL)
                finally:
                    self._sleepers -= 1

    def cancel_subscriber(self, sub: _Subscriber) -> None:
        with self._cond:
            sub.cancelled = True
            self._cond.notify_all()

    def unsubscribe(self, sub: _Subscriber) -> None:
        # Under the registry lock: nobody can join between "no one is left" and the cancel.
        with _registry_lock:
            with self._cond:
                if sub in self._subscribers:
                    self._subscribers.remove(sub)
                orphaned = not self._subscribers and not self.detached
            if orphaned and not self.finished.is_set():
                self.cancel()

    def cancel(self) -> None:
        self.abort("cancelled")

    def snapshot(self) -> PullProgress:
        """The newest value, folded now: with no consumer (a detached pull whose page was
        closed) nothing else folds the byte-only updates."""
        with self._cond:
            self._fold_pending()
            return self.latest or PullProgress(model=self.model, status="starting")


_partials: dict[str, dict[str, int]] = {}
_partials_lock = threading.Lock()


def known_partials(host: str) -> dict[str, int]:
    """Bytes of each layer that an earlier pull in this process left unfinished on ``host``:
    what a new pull of it resumes from (Ollama's first report also counts new bytes)."""
    with _partials_lock:
        return dict(_partials.get(host, {}))


def _remember_partials(host: str, folder: ProgressFolder, success: bool) -> None:
    with _partials_lock:
        mine = _partials.setdefault(host, {})
        for key, (total, completed) in folder.layers.items():
            if success or completed >= total or completed == 0:
                mine.pop(key, None)
            else:
                mine[key] = completed


_registry: dict[tuple[str, str], _PullJob] = {}
_registry_lock = threading.RLock()


def _join(host: str, name: ModelName, stall_timeout: float, clock: Clock,
          check_disk: bool = True, insecure: bool = False) -> tuple[_PullJob, _Subscriber]:
    """Attach to the running pull of ``name``, or start one; subscribed before it starts,
    so the first consumer sees every value."""
    with _registry_lock:
        job = _registry.get((host, name.key))
        if job is not None and job.joinable:
            return job, job.subscribe()
        job = _registry[(host, name.key)] = _PullJob(
            host, name, stall_timeout, clock, check_disk, insecure)
        q = job.subscribe()
    job.start()
    return job, q


def pull_model(
    name: str,
    host: Optional[str] = None,
    *,
    stall_timeout: Optional[float] = None,
    cancel: Optional[CancelToken] = None,
    detach: bool = False,
    check_disk: bool = True,
    insecure: bool = False,
    clock: Clock = time.monotonic,
) -> Iterator[PullProgress]:
    """Download ``name``, yielding a ``PullProgress`` for every change; the last has done=True.

    Raises InvalidModelName (before any request), OllamaUnavailable, ModelNotFound,
    PullFailed (reason: Ollama's, "stalled...", "connection lost...") or PullCancelled.
    Closing the generator leaves the pull; when no consumer is left it is cancelled, unless
    ``detach`` is true (then it runs on until done or ``cancel_pull``). The partial download
    stays with Ollama, and the next pull resumes from it. With ``check_disk`` (and a local
    host) the pull stops as soon as a layer's size shows it cannot fit on the disk.
    ``insecure`` allows a plain-HTTP registry (``http://host:port/ns/model``); without it
    such a name is refused before anything is sent.
    """
    parsed = parse_name(name)
    if parsed.scheme == "http" and not insecure:
        raise InvalidRequest(f"'{parsed.display}' is on a plain-HTTP registry: pass "
                             f"insecure=True (CLI: --insecure) if you trust it")
    url = _client.resolve_host(host)
    limit = stall_timeout_default() if stall_timeout is None else float(stall_timeout)
    return _consume(lambda: _join(url, parsed, limit, clock, check_disk, insecure), detach,
                    cancel)


def _consume(join, detach: bool, cancel: Optional[CancelToken]) -> Iterator[PullProgress]:
    job, sub = join()  # on the first next(), like any generator: nothing runs before
    if detach:
        job.detached = True
    unregister = cancel.on_cancel(lambda: job.cancel_subscriber(sub)) if cancel else None
    try:
        while True:
            item = job.next_value(sub)
            if item is _END:
                break
            if item is _CANCELLED:
                raise PullCancelled(job.model)
            yield item
        if job.error is not None:
            raise job.error.with_traceback(None)  # one error, shared by every consumer
    finally:
        if unregister:
            unregister()
        job.unsubscribe(sub)


def cancel_pull(name: str, host: Optional[str] = None) -> bool:
    """Stop the running pull of ``name`` for every consumer. False when none was running."""
    key = (_client.resolve_host(host), parse_name(name).key)
    with _registry_lock:
        job = _registry.get(key)
    if job is None:
        return False
    log.info("Cancelling the pull of Ollama model '%s'", job.model)
    job.cancel()
    return True


def active_pulls(host: Optional[str] = None) -> list[PullProgress]:
    """The latest progress of every pull running in this process (all hosts when None)."""
    url = _client.resolve_host(host) if host else None
    with _registry_lock:
        jobs = [j for (h, _), j in _registry.items() if url is None or h == url]
    return [j.snapshot() for j in jobs]


def is_pulling(name: str, host: Optional[str] = None) -> bool:
    """True while a pull of ``name`` runs in this process."""
    key = (_client.resolve_host(host), parse_name(name).key)
    with _registry_lock:
        return key in _registry

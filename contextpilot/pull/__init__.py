"""pull_model(): Ollama's pull stream as a plain generator of whole-model PullProgress values.

One pull per model per process: a second request for a model that is already downloading
attaches to the running pull (one HTTP stream, every consumer sees the same progress).
A pull ends on success, an error, cancel_pull(), the last consumer leaving, or the stall
limit — never on a total time limit, since a 40 GB model may take an hour. How each pull
ended is kept for an hour (``recent_pulls``).

The engine, by concern, in this package: ``progress`` (pure math: Ollama's per-layer events
folded into one whole-model value, speed and ETA, ``throttle``), ``_reader`` (the stream's
hot loop), ``_broadcast`` (the step log and the newest value, consumers woken on change),
``_watchdog`` (the stall limit), ``_disk`` (the disk guard), ``_registry`` (running pulls,
outcomes, and the lock order), ``_job`` (one pull, wiring them). This module is the public
face.
"""

from __future__ import annotations

import logging
import time
from typing import Iterator, Optional, Union

from .. import _client, settings
from ..cancel import CancelToken
from ..errors import InvalidRequest, PullCancelled
from ..names import ModelName, parse_name
from ..types import PullOutcome, PullProgress
from ._broadcast import CANCELLED, END
from ._job import PullJob, known_partials
from ._registry import Outcomes, Registry
from .progress import Clock, throttle

log = logging.getLogger("contextpilot")

_registry: Registry[PullJob] = Registry()
_outcomes = Outcomes()


def stall_timeout_default() -> float:
    """CONTEXTPILOT_STALL_TIMEOUT, else 120 seconds."""
    return settings.seconds("CONTEXTPILOT_STALL_TIMEOUT")


def _join(host: str, name: ModelName, stall_timeout: float, clock: Clock, check_disk: bool,
          detach: bool, insecure: bool = False, quiet: bool = False):
    key = (host, name.key)

    def make() -> PullJob:
        return PullJob(host, name, stall_timeout, clock, check_disk=check_disk,
                       leave=lambda job: _registry.remove(key, job), outcomes=_outcomes,
                       insecure=insecure, quiet=quiet)

    job, cursor = _registry.join(key, make, keep=detach)
    if not quiet:
        job.quiet = False  # someone wants this download: it is no longer just a size probe
    return job, cursor


Name = Union[str, ModelName]


def pull_model(
    name: Name,
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
    ``detach`` is true (then it runs on until done or ``cancel_pull``). The ``cancel`` token
    ends this consumer: ``cancel()`` also withdraws its ``detach`` (a pull nobody else keeps
    is cancelled), ``leave()`` (a closed page) does not, until a ``cancel()`` after it. The partial download stays with
    Ollama, and the next pull resumes from it. With ``check_disk`` (and a local
    host) the pull stops as soon as a layer's size shows it cannot fit on the disk.
    ``insecure`` allows a plain-HTTP registry (``http://host:port/ns/model``); without it
    such a name is refused before anything is sent.
    """
    return _pull(parse_name(name), host, stall_timeout, cancel, detach, check_disk, insecure,
                 clock)


def probe_pull(name: ModelName, host: Optional[str], cancel: CancelToken
               ) -> Iterator[PullProgress]:
    """``pull_model`` for a size probe (``check_fit``): a pull its caller stops at the first
    layer's size. Unless someone else joins it, it is not listed as a running download, and
    its cancel is neither logged as a failure nor kept in ``recent_pulls``."""
    return _pull(name, host, None, cancel, False, False, False, time.monotonic, quiet=True)


def _pull(parsed: ModelName, host: Optional[str], stall_timeout: Optional[float],
          cancel: Optional[CancelToken], detach: bool, check_disk: bool, insecure: bool,
          clock: Clock, quiet: bool = False) -> Iterator[PullProgress]:
    if parsed.scheme == "http" and not insecure:
        raise InvalidRequest(f"'{parsed.display}' is on a plain-HTTP registry: pass "
                             f"insecure=True (CLI: --insecure) if you trust it.")
    url = _client.resolve_host(host)
    limit = stall_timeout_default() if stall_timeout is None else float(stall_timeout)
    return _consume(
        lambda: _join(url, parsed, limit, clock, check_disk, detach, insecure, quiet), cancel)


def _consume(join, cancel: Optional[CancelToken]) -> Iterator[PullProgress]:
    job, cursor = join()  # on the first next(), like any generator: nothing runs before
    broadcast = job.broadcast
    unregister = cancel.on_cancel(lambda: broadcast.cancel(cursor)) if cancel else None
    try:
        while True:
            item = broadcast.next(cursor)
            if item is END:
                break
            if item is CANCELLED:
                raise PullCancelled(job.model)
            yield item  # type: ignore[misc]
        if job.error is not None:
            raise job.error.with_traceback(None)  # one error, shared by every consumer
    finally:
        if unregister:
            unregister()
        stopped = bool(cancel and cancel.stopped)
        job.leave(cursor, withdraw=stopped)
        if cancel is not None and cursor.keep and not stopped:  # left, still kept: a later
            cancel.on_withdraw(lambda: job.leave(cursor, withdraw=True))  # Stop withdraws


def cancel_pull(name: Name, host: Optional[str] = None) -> bool:
    """Stop the running pull of ``name`` for every consumer. False when none was running."""
    job = _registry.get((_client.resolve_host(host), parse_name(name).key))
    if job is None:
        return False
    log.info("Cancelling the pull of Ollama model '%s'", job.model)
    job.cancel()
    return True


def active_pulls(host: Optional[str] = None) -> list[PullProgress]:
    """The latest progress of every pull running in this process (all hosts when None)."""
    url = _client.resolve_host(host) if host else None
    return [job.snapshot() for job in _registry.jobs(url) if not job.quiet]


def is_pulling(name: Name, host: Optional[str] = None) -> bool:
    """True while a pull of ``name`` runs in this process."""
    return _registry.get((_client.resolve_host(host), parse_name(name).key)) is not None


def recent_pulls(host: Optional[str] = None) -> list[PullOutcome]:
    """How the pulls that ended in this process in the last hour ended, newest first (all
    hosts when None): done, failed (with the error's message) or cancelled."""
    url = _client.resolve_host(host) if host else None
    return _outcomes.recent(url)


__all__ = ["active_pulls", "cancel_pull", "is_pulling", "probe_pull", "pull_model",
           "recent_pulls", "stall_timeout_default", "throttle"]

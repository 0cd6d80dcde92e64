"""One running pull: the HTTP stream and its thread, wired to the broadcast, the stall
watchdog and the disk guard; it leaves the registry and records its outcome when it ends.

Threads: the pull thread (``pull <model>``) reads the stream; the watchdog (``stall <model>``)
sleeps until the stall limit could be reached. Both end when the pull ends, whatever ends it:
success, an error, a cancel, the stall limit, the disk guard, the last consumer leaving. An
abort shuts the stream's socket down, so the pull thread's read fails at once.

No lock of this module's is held while calling out: ``abort`` seals the broadcast (its lock
alone), then leaves the registry (its lock alone), then shuts the socket down.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from .. import _client, models
from ..errors import PullCancelled, PullFailed
from ..names import ModelName
from ..types import PullProgress
from ._broadcast import Broadcast, Cursor
from ._disk import DiskGuard
from ._reader import read
from ._registry import Outcomes
from ._watchdog import StallWatchdog
from .progress import Clock, ProgressFolder

log = logging.getLogger("contextpilot")


class PullJob:
    """One HTTP pull of ``name`` from ``host``, shared by every consumer of that model."""

    def __init__(self, host: str, name: ModelName, stall_timeout: float, clock: Clock, *,
                 check_disk: bool, leave: Callable[["PullJob"], None],
                 outcomes: Outcomes, insecure: bool = False, quiet: bool = False) -> None:
        self.host, self.name, self.model = host, name, name.display
        client = _client.get_client(host, streaming=True)
        self.stream = _client.Stream(
            lambda: client.pull(self.model, insecure=insecure, stream=True))
        self.folder = ProgressFolder(self.model, clock, known_partials(host))
        self.broadcast = Broadcast(self._fold)
        self.finished = threading.Event()
        self.watchdog = StallWatchdog(stall_timeout, self.broadcast.pending_completed,
                                      self.finished, self.abort)
        self.disk = DiskGuard(host, check_disk)
        self.error: Optional[Exception] = None
        self._leave_registry = leave
        self._outcomes = outcomes
        self.quiet = quiet  # a size probe nobody else joined (see pull.probe_pull)

    def _fold(self, event: Any) -> PullProgress:
        return self.folder.feed(event.status or "", event.digest, event.total, event.completed)

    def start(self) -> None:
        log.info("Pulling Ollama model '%s'...", self.model)
        threading.Thread(target=self._run, name=f"pull {self.model}", daemon=True).start()
        threading.Thread(target=self.watchdog.run, name=f"stall {self.model}",
                         daemon=True).start()

    # -- the pull thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            read(self.stream, self.broadcast.publish, self._on_step, self.name)
            if not self.succeeded:
                raise PullFailed(self.model, "the download ended before Ollama reported success")
        except Exception as exc:  # every failure reaches every consumer as one of ours
            if not self.succeeded:  # an abort that lands after "success" changes nothing
                self.error = _client.pull_error(exc, self.host, self.name, self.stream)
                if not self._probe_ended:
                    log.warning("Pulling Ollama model '%s' failed: %s", self.model, self.error)
        finally:
            self._close()

    @property
    def _probe_ended(self) -> bool:
        """A size probe stopped as planned: no failure to tell anyone about."""
        return self.quiet and isinstance(self.error, PullCancelled)

    @property
    def succeeded(self) -> bool:
        latest = self.broadcast.latest
        return bool(latest and latest.done)

    def _on_step(self, seq: int, event: Any) -> None:
        previous, value = self.broadcast.step(seq, event)
        self.watchdog.touch(value.step not in ("verify", "write", "done"))
        refusal = self.disk.refusal(previous, value)  # no lock held: the disk may be slow
        if refusal:
            self.abort(refusal)
            raise PullFailed(self.model, "aborted for lack of disk space")

    def _close(self) -> None:
        last = self.broadcast.snapshot(self.model)  # folds the last byte-only event
        models.invalidate_cache(self.host)
        # Before leaving the registry: the next pull of this model resumes from here.
        _remember_partials(self.host, self.folder, success=self.error is None)
        outcome = ("done" if self.error is None else
                   "cancelled" if isinstance(self.error, PullCancelled) else "failed")
        if not self._probe_ended:
            self._outcomes.record(self.model, self.host, outcome,
                                  "" if self.error is None else str(self.error),
                                  last.completed, last.total)
        self._leave_registry(self)  # a new request starts a new pull from now on
        if self.error is None:
            log.info("Successfully pulled Ollama model '%s'", self.model)
        self.broadcast.close()  # last: whoever sees the end finds the outcome recorded
        self.finished.set()

    # -- from any thread ---------------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """End the pull for every consumer with ``reason`` ("cancelled", "stalled: ...")."""
        self.broadcast.seal()
        self._leave_registry(self)
        self.stream.abort(reason)

    def cancel(self) -> None:
        self.abort("cancelled")

    def leave(self, cursor: Cursor, withdraw: bool = False) -> None:
        """A consumer is done (``withdraw``: it asked to stop, so what it detached is
        withdrawn); the last one out cancels a pull nobody keeps."""
        if self.broadcast.leave(cursor, withdraw):
            self.cancel()

    def snapshot(self) -> PullProgress:
        return self.broadcast.snapshot(self.model)


# -- where earlier pulls stopped -------------------------------------------------------------

_partials: dict[str, dict[str, int]] = {}
_partials_lock = threading.Lock()  # a leaf lock: nothing is taken under it


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

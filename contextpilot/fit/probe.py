"""The size probe: when no catalog, registry or Hub knows a model's size, start its pull
through Ollama, read the first layer's total (the weights, nearly the whole model) and stop
at once. Ollama keeps the partial, so nothing is wasted; the answer is kept for PROBE_TTL.

The pull itself is passed in (``Puller``): the fit check sits above the pull engine and
never imports it, so the pull engine's disk guard can read the disk without a circle.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator, Optional

from .. import _client
from ..cancel import CancelToken
from ..errors import ContextPilotError, ModelNotFound, PullCancelled
from ..names import ModelName
from ..types import PullProgress
from .lookup import SizeLookup

Puller = Callable[[ModelName, Optional[str], CancelToken], Iterator[PullProgress]]
"A pull that its caller stops at the first layer's size (``pull.probe_pull``)."

PROBE_TIMEOUT = 20.0
"Seconds a probe waits for Ollama to announce the first layer's size."
PROBE_TTL = 600.0
"Seconds a probe's answer is reused (a page that asks twice starts one probe)."
_probed: dict[tuple[str, str], tuple[float, SizeLookup]] = {}
_probed_lock = threading.Lock()


def cached_probe(name: ModelName, host: Optional[str]) -> Optional[SizeLookup]:
    """What a recent probe of ``name`` on ``host`` found, if one ran."""
    with _probed_lock:
        hit = _probed.get((_client.resolve_host(host), name.key))
    return hit[1] if hit and time.monotonic() - hit[0] < PROBE_TTL else None


def probe_size(name: ModelName, host: Optional[str], pull: Puller) -> SizeLookup:
    """Probe with ``pull``, and remember a size (or "no such model") for PROBE_TTL."""
    found = _probe(name, host, pull)
    if found.size is not None or found.missing:
        with _probed_lock:
            _probed[(_client.resolve_host(host), name.key)] = (time.monotonic(), found)
    return found


def _probe(name: ModelName, host: Optional[str], pull: Puller) -> SizeLookup:
    token = CancelToken()  # a probe has a deadline: Ollama may be slow to reach its registry
    timer = threading.Timer(PROBE_TIMEOUT, token.cancel)
    timer.daemon = True
    timer.start()
    stream = pull(name, host, token)
    try:
        for value in stream:
            if value.done or (value.step == "download" and value.total > 0):
                return SizeLookup(size=value.total, source="probe",
                                  note="the size of its first layer, read by starting the "
                                       "download and stopping it at once")
    except PullCancelled:
        return SizeLookup(note=f"Ollama did not announce the size within {PROBE_TIMEOUT:g} s.")
    except ModelNotFound:
        return SizeLookup(missing=True, note=f"Ollama found no model {name.display} in its "
                                             f"registry (check the name and tag).")
    except ContextPilotError as exc:
        return SizeLookup(note=str(exc))
    finally:
        timer.cancel()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return SizeLookup(note="Ollama's pull ended before it announced a size.")


__all__ = ["PROBE_TIMEOUT", "PROBE_TTL", "Puller", "cached_probe", "probe_size"]

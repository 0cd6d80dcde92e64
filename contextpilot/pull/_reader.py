"""The stream reader: Ollama's raw pull events, split into steps and byte-only updates.

The hot loop of a pull, one turn per raw event (100,000 for a big model at full speed), so it
does as little as it can: an event of the same status, layer and size as the one before only
carries more bytes and is handed on raw (``on_bytes``: one store); anything else is a new step
(``on_step``), rare, and may take locks.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .. import _client
from ..names import ModelName

OnEvent = Callable[[int, Any], None]


def read(events: Iterable[Any], on_bytes: OnEvent, on_step: OnEvent, name: ModelName) -> None:
    """Feed every event of ``events`` to ``on_bytes`` or ``on_step`` with its sequence number.
    Raises the error a status line reports ("error: ..." from the newer registry client)."""
    key: object = None
    seq = -1
    for event in events:
        seq += 1
        if (event.status, event.digest, event.total) == key:
            on_bytes(seq, event)
            continue
        key = (event.status, event.digest, event.total)
        status = event.status or ""
        if status.startswith("error"):
            raise _client.status_error(status, name)
        on_step(seq, event)

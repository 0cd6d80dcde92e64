"""Make room: which installed models to remove so that a download fits the disk (never the
model itself), least recently used first (the app's chat times, ``usage``), the largest first
among equals."""

from __future__ import annotations

from typing import Optional

from .. import models
from ..names import ModelName
from ..types import ModelInfo
from ..units import format_size
from . import usage


def make_room(name: ModelName, size: Optional[int], free: Optional[int],
              host: Optional[str]) -> tuple[ModelInfo, ...]:
    """Installed models whose removal would free enough disk for ``name``; () when none
    would, or when the figures or the installed list are not known."""
    if size is None or free is None:
        return ()
    try:
        installed = models.installed_by_key(host)
    except Exception:  # Ollama down: no advice, still a verdict
        return ()
    last = usage.last_used()
    others = [(k, m) for k, m in installed.items() if k != name.key]
    others.sort(key=lambda km: (last.get(km[0], 0.0), -km[1].size))
    chosen, room = [], free
    for _, m in others:
        if room >= size:
            break
        chosen.append(m)
        room += m.size
    return tuple(chosen) if room >= size else ()


def room_note(room: tuple[ModelInfo, ...]) -> str:
    names = ", ".join(f"{m.name} ({format_size(m.size)})" for m in room)
    return f"Removing {names} would make room."


__all__ = ["make_room", "room_note"]

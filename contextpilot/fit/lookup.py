"""What one size lookup learnt: a size and where it came from, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class SizeLookup:
    """A download size and its source (catalog, installed, registry, hub, probe), or a
    note that says why it is not known."""

    size: Optional[int] = None
    source: str = "unknown"
    note: str = ""
    "Why the size is not known (a sentence), or a caveat about it."
    missing: bool = False
    "The registry (or Ollama) said there is no such model or tag: do not look further."
    arch: Optional[tuple[int, int, int]] = None
    "(layers, KV heads, head size) when the source knows them (a GGUF header)."


__all__ = ["SizeLookup"]

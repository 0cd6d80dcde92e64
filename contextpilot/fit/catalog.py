"""The catalog of popular models (a data file in the package), and lookups in it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Optional, Union

from ..names import ModelName, parse_name
from .estimate import memory_needed


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable tag of a popular model."""

    name: str
    "Display name, e.g. ``qwen3:0.6b``."
    size: int
    "Download size in bytes."
    memory: int
    "Estimated memory to run it at the default context (file + KV cache), in bytes."
    parameters: str
    capabilities: tuple[str, ...]
    description: str
    arch: Optional[tuple[int, int, int]] = None
    "(layers, KV heads, head size), for the KV cache at any context; None when not known."

    @property
    def short_name(self) -> str:
        """``mistral`` for ``mistral:latest``, else the full name."""
        return self.name[: -len(":latest")] if self.name.endswith(":latest") else self.name


@lru_cache(maxsize=1)
def about() -> str:
    """Where the catalog's figures come from, and when."""
    data = json.loads(resources.files(__package__).joinpath("catalog.json").read_text("utf-8"))
    return str(data.get("_about", ""))


@lru_cache(maxsize=1)
def catalog() -> tuple[CatalogEntry, ...]:
    """Every catalog tag, in the file's order."""
    data = json.loads(resources.files(__package__).joinpath("catalog.json").read_text("utf-8"))
    entries = []
    for model in data["models"]:
        for tag, facts in model["tags"].items():
            arch = tuple(int(x) for x in facts["arch"]) if facts.get("arch") else None
            size = int(facts["size"])
            entries.append(CatalogEntry(
                name=f"{model['name']}:{tag}", size=size, memory=memory_needed(size, arch)[0],
                parameters=facts.get("parameters", ""),
                capabilities=tuple(model.get("capabilities", ())),
                description=model.get("description", ""), arch=arch,  # type: ignore[arg-type]
            ))
    return tuple(entries)


@lru_cache(maxsize=1)
def _by_key() -> dict[str, CatalogEntry]:
    return {parse_name(e.name).key: e for e in catalog()}  # the data file's names, once


def catalog_entry(name: Union[str, ModelName]) -> Optional[CatalogEntry]:
    """The catalog's facts for ``name`` (any spelling), or None."""
    return _by_key().get(parse_name(name).key)


def recommended(total_memory: int, headroom: float = 0.75) -> Optional[CatalogEntry]:
    """The largest catalog model whose memory estimate fits in ``headroom`` of ``total_memory``."""
    fitting = [e for e in catalog() if e.memory <= total_memory * headroom]
    return max(fitting, key=lambda e: e.memory, default=None)

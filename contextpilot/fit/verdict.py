"""The fit verdict: does a model of a known (or unknown) download size fit this machine's
disk and memory? Figures, notes in plain sentences, and make-room advice when the disk is
short. The size itself is found by ``sizes``; the machine's figures come from ``machine``.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .. import _client, machine
from ..errors import InvalidRequest
from ..names import ModelName
from ..types import FitVerdict
from ..units import format_size
from .estimate import DEFAULT_CONTEXT, memory_needed
from .room import make_room, room_note

MAX_CONTEXT = 10_000_000


def check_context(context_length: object) -> None:
    """Refuse a context length that is not a whole number of tokens in range."""
    if context_length is None:
        return
    if isinstance(context_length, bool) or not isinstance(context_length, int) or not (
            0 < context_length <= MAX_CONTEXT):
        raise InvalidRequest(f"The context length must be a whole number of tokens from 1 "
                             f"to {MAX_CONTEXT:,} (got {context_length!r:.40}).")


def cloud_verdict(shown: str) -> FitVerdict:
    """A cloud model: it runs on ollama.com, nothing is downloaded or checked here."""
    note = f"{shown} runs on ollama.com: nothing is downloaded, and it needs no memory here."
    return FitVerdict(model=shown, download_size=None, memory_needed=None, free_disk=None,
                      total_memory=None, message=note, size_source="unknown", notes=(note,),
                      cloud=True)


def fit_for_size(name: ModelName, size: Optional[int], *, source: str = "unknown",
                 host: Optional[str] = None, context_length: Optional[int] = None,
                 arch: Optional[Sequence[int]] = None, lookup_note: str = "",
                 missing: bool = False) -> FitVerdict:
    """The verdict for ``name`` once its download size is known (or not)."""
    model = name.display
    ctx = int(context_length or DEFAULT_CONTEXT)
    memory = kv = None
    exact = False
    if size is not None:
        memory, kv, exact = memory_needed(size, arch, ctx)
    local = machine.is_local_host(host)
    free = machine.free_disk() if local else None
    ram, gpu = machine.total_memory(), machine.gpu_memory()
    fits_disk = None if size is None or free is None else size <= free
    if source == "installed":  # on the disk already: nothing to download
        fits_disk = True
    fits_memory = None if memory is None else memory <= max(ram, gpu or 0)
    room = make_room(name, size, free, host) if fits_disk is False else ()
    notes = _notes(model, size, memory, free, ram, gpu, fits_disk, fits_memory, local, host)
    if source == "installed":
        notes = _installed_notes(model, size, memory, ram, fits_memory, notes)
    _add_lookup_note(notes, size, source, lookup_note, missing)
    if memory is not None and kv is not None:
        notes.append(_memory_how(ctx, kv, exact))
    if room:
        notes.append(room_note(room))
    return FitVerdict(
        model=model, download_size=size, memory_needed=memory, free_disk=free,
        total_memory=ram, gpu_memory=gpu, fits_disk=fits_disk, fits_memory=fits_memory,
        message=" ".join(notes), size_source=source if size is not None else "unknown",
        notes=tuple(notes), context_length=ctx, kv_cache=kv,
        make_room=tuple(m.name for m in room), missing=missing,
    )


def _installed_notes(model: str, size: Optional[int], memory: Optional[int], ram: int,
                     fits_memory: Optional[bool], notes: list[str]) -> list[str]:
    """An installed model: its size on disk, not a download, and whether memory holds it."""
    memory_, ram_ = format_size(memory), format_size(ram)
    if fits_memory is False:
        kept = [n for n in notes if "of memory" in n]
        return [f"{model} is installed ({format_size(size)})."] + kept
    return [f"{model} is installed ({format_size(size)}) and fits: about {memory_} of "
            f"memory ({ram_} here)."]


def _add_lookup_note(notes: list[str], size: Optional[int], source: str, lookup_note: str,
                     missing: bool) -> None:
    """Why the size is unknown ("not found" replaces the promise), or a caveat about it."""
    if not lookup_note:
        return
    if size is None:
        notes[0:1] = [lookup_note] if missing else [notes[0], lookup_note]
    elif source == "probe":
        notes.append(f"(The size is {lookup_note}.)")
    elif source == "hub":
        notes.append(lookup_note)


def _memory_how(ctx: int, kv: int, exact: bool) -> str:
    kv_ = format_size(kv)
    if exact:
        return f"Memory = the file + {kv_} of KV cache for a {ctx:,}-token context."
    return (f"Memory = the file + an estimated {kv_} of KV cache for a {ctx:,}-token "
            f"context (a margin from the file size: its layer counts are not known).")


def estimate_memory(download_size: int) -> int:
    """Memory for a file of ``download_size`` at the default context (layer counts unknown)."""
    return memory_needed(download_size)[0]


def _notes(model, size, memory, free, ram, gpu, fits_disk, fits_memory, local, host):
    size_, memory_, free_, ram_ = (format_size(x) for x in (size, memory, free, ram))
    notes = []
    if size is None:
        notes.append(f"The download size of {model} is not known yet; it shows once the "
                     f"download starts, and the download stops at once if it cannot fit.")
    if fits_disk is False:
        notes.append(f"{model} is a {size_} download but only {free_} is free where "
                     f"Ollama keeps models ({machine.models_dir()}). Free some space first.")
    elif not local:
        notes.append(f"The disk check cannot be made: Ollama runs on another host "
                     f"({_client.resolve_host(host)}).")
    if fits_memory is False:
        notes.append(f"{model} needs about {memory_} of memory; this machine has "
                     f"{ram_}{' (GPU: ' + format_size(gpu) + ')' if gpu else ''}. "
                     f"It will be very slow or fail to load.")
    if fits_disk and fits_memory:
        notes.append(f"{model} fits: a {size_} download ({free_} free), about "
                     f"{memory_} of memory ({ram_} here).")
    elif fits_disk is None and fits_memory and size is not None:
        notes.append(f"{model} needs about {memory_} of memory ({ram_} here).")
    return notes


__all__ = ["MAX_CONTEXT", "check_context", "cloud_verdict", "estimate_memory", "fit_for_size"]

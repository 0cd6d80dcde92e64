"""Will it fit? Disk, memory and GPU figures for a model, before anything is downloaded.

The download size comes from the catalog, an installed copy, the registry's manifest, the
Hugging Face Hub or a probe (see ``discovery``); when none is known the verdict says so, and
a pull ends as soon as the first (weights) layer's size shows it cannot fit the disk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

import psutil

from . import _client, discovery, models, netaddr, settings
from .catalog import catalog_entry
from .discovery import SizeLookup
from .errors import InvalidRequest
from .estimate import DEFAULT_CONTEXT, memory_needed
from .names import DEFAULT_HOST, ModelName, parse_name
from .types import FitVerdict
from .units import format_size


def is_local_host(host: Optional[str] = None) -> bool:
    """True when the Ollama host is this machine (so its disk is ours to measure).

    >>> is_local_host("http://127.0.0.1:11434"), is_local_host("[::1]:11434")
    (True, True)
    >>> is_local_host("http://gpu-box:11434")
    False
    """
    return netaddr.is_this_machine(_client.resolve_host(host))


def models_dir() -> Path:
    """Where Ollama keeps models: OLLAMA_MODELS, else ~/.ollama/models (every platform)."""
    env = settings.text("OLLAMA_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def free_disk(path: Optional[Path] = None) -> Optional[int]:
    """Free bytes on the disk that holds ``path`` (its nearest existing parent), or None
    when it cannot be read."""
    try:
        p = (path or models_dir()).resolve()
        while not p.exists() and p != p.parent:
            p = p.parent
        return int(psutil.disk_usage(str(p)).free)
    except OSError:
        return None


def guard_disk() -> Optional[int]:
    """Free bytes to hold a pull to, or None when this process cannot see Ollama's disk:
    the models folder must exist where we look (OLLAMA_MODELS, else ~/.ollama/models);
    a system service keeps its models elsewhere, and guessing wrong must not stop a pull."""
    try:
        if not models_dir().is_dir():
            return None
    except OSError:
        return None
    return free_disk()


def total_memory() -> int:
    return int(psutil.virtual_memory().total)


def gpu_memory() -> Optional[int]:
    """Total memory of NVIDIA GPUs in bytes (nvidia-smi), or None when there is none."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True).stdout
        return sum(int(float(x)) for x in out.split()) * 1024 * 1024 or None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def check_fit(name: str, host: Optional[str] = None, *, context_length: Optional[int] = None,
              probe: bool = True, trusted_only: bool = False) -> FitVerdict:
    """Whether ``name`` fits this machine's disk and memory, with the figures and a message.

    The download size comes from the catalog, an installed copy, the registry's manifest,
    the Hugging Face Hub (``hf.co/...``) or, when none answers, a probe (the pull started
    through Ollama and stopped at the first layer's size; Ollama keeps the partial).
    ``size_source`` says which. Memory = the file + the KV cache at ``context_length``
    (default 4096). ``probe=False``: reuse a recent probe's answer but start none.
    ``trusted_only`` (a shared app): ask only the default registry and the Hub, and never
    probe a name on another host. Cloud models are not checked.
    """
    _check_context(context_length)
    parsed = parse_name(name)
    if parsed.is_cloud:
        return _cloud_verdict(name)
    display = parsed.display
    found, arch = _find_size(parsed, host, probe, trusted_only)
    return fit_for_size(display, found.size, source=found.source, host=host,
                        context_length=context_length, arch=arch, lookup_note=found.note,
                        missing=found.missing)


MAX_CONTEXT = 10_000_000


def _check_context(context_length: object) -> None:
    if context_length is None:
        return
    if isinstance(context_length, bool) or not isinstance(context_length, int) or not (
            0 < context_length <= MAX_CONTEXT):
        raise InvalidRequest(f"The context length must be a whole number of tokens from 1 "
                             f"to {MAX_CONTEXT:,} (got {context_length!r:.40}).")


def _cloud_verdict(name: str) -> FitVerdict:
    shown = str(name).strip()
    note = f"{shown} runs on ollama.com: nothing is downloaded, and it needs no memory here."
    return FitVerdict(model=shown, download_size=None, memory_needed=None, free_disk=None,
                      total_memory=None, message=note, size_source="unknown", notes=(note,),
                      cloud=True)


def fit_for_size(model: str, size: Optional[int], *, source: str = "unknown",
                 host: Optional[str] = None, context_length: Optional[int] = None,
                 arch=None, lookup_note: str = "", missing: bool = False) -> FitVerdict:
    """The verdict for ``model`` once its download size is known (or not)."""
    ctx = int(context_length or DEFAULT_CONTEXT)
    memory = kv = None
    exact = False
    if size is not None:
        memory, kv, exact = memory_needed(size, arch, ctx)
    local = is_local_host(host)
    free = free_disk() if local else None
    ram, gpu = total_memory(), gpu_memory()
    fits_disk = None if size is None or free is None else size <= free
    fits_memory = None if memory is None else memory <= max(ram, gpu or 0)
    room = make_room(model, size, free, host) if fits_disk is False else ()
    notes = _notes(model, size, memory, free, ram, gpu, fits_disk, fits_memory, local, host)
    if size is None and lookup_note:  # why it is unknown; "not found" replaces the promise
        notes[0:1] = [lookup_note] if missing else [notes[0], lookup_note]
    elif source == "probe" and lookup_note:
        notes.append(f"(The size is {lookup_note}.)")
    elif source == "hub" and lookup_note:
        notes.append(lookup_note)
    if memory is not None and kv is not None:
        notes.append(_memory_how(ctx, kv, exact))
    if room:
        notes.append(_room_note(room))
    return FitVerdict(
        model=model, download_size=size, memory_needed=memory, free_disk=free,
        total_memory=ram, gpu_memory=gpu, fits_disk=fits_disk, fits_memory=fits_memory,
        message=" ".join(notes), size_source=source if size is not None else "unknown",
        notes=tuple(notes), context_length=ctx, kv_cache=kv,
        make_room=tuple(m.name for m in room),
    )


def _memory_how(ctx: int, kv: int, exact: bool) -> str:
    kv_ = format_size(kv)
    if exact:
        return f"Memory = the file + {kv_} of KV cache for a {ctx:,}-token context."
    return (f"Memory = the file + an estimated {kv_} of KV cache for a {ctx:,}-token "
            f"context (a margin from the file size: its layer counts are not known).")


def _find_size(name: ModelName, host, probe: bool, trusted_only: bool):
    """(SizeLookup, arch) from the first source that knows."""
    entry = catalog_entry(name.display)
    if entry is not None:
        return SizeLookup(entry.size, "catalog"), entry.arch
    try:
        have = models.installed(name.display, host)
    except Exception:  # an unreachable host must not stop a fit check
        have = None
    if have is not None:
        return SizeLookup(have.size, "installed"), None
    found = _remote_size(name, trusted_only)
    if found.size is not None or found.missing:
        return found, found.arch
    trusted = name.host.lower() == DEFAULT_HOST or discovery.is_hf(name)
    earlier = discovery.cached_probe(name, host)
    if earlier is not None:
        return earlier, None
    if probe and discovery.probe_enabled() and (trusted or not trusted_only):
        probed = discovery.probe_size(name, host)
        if probed.size is not None or probed.missing:
            return probed, None
        return SizeLookup(note=f"{found.note} {probed.note}".strip()), None
    return found, None


def _remote_size(name: ModelName, trusted_only: bool) -> SizeLookup:
    """The registry's manifest, or the Hub for hf.co names; never a visitor's host when
    ``trusted_only``."""
    if not discovery.lookups_enabled():
        return SizeLookup(note="")
    if discovery.is_hf(name):
        from .hub import hub_size

        return hub_size(name)
    if trusted_only and name.host.lower() != DEFAULT_HOST:
        return SizeLookup(note="")
    return discovery.registry_size(name)


def estimate_memory(download_size: int) -> int:
    """Memory for a file of ``download_size`` at the default context (layer counts unknown)."""
    return memory_needed(download_size)[0]


def make_room(model: str, size: Optional[int], free: Optional[int], host: Optional[str]):
    """Installed models whose removal would free enough disk for ``model`` (never itself):
    least recently used first (the app's chat times), the largest first among equals."""
    if size is None or free is None:
        return ()
    from . import usage

    try:
        installed = models.list_models(host)
    except Exception:  # Ollama down: no advice, still a verdict
        return ()
    last = usage.last_used()
    me = parse_name(model).key
    others = [m for m in installed if parse_name(m.name).key != me]
    others.sort(key=lambda m: (last.get(parse_name(m.name).key, 0.0), -m.size))
    chosen, room = [], free
    for m in others:
        if room >= size:
            break
        chosen.append(m)
        room += m.size
    return tuple(chosen) if room >= size else ()


def _room_note(room) -> str:
    names = ", ".join(f"{m.name} ({format_size(m.size)})" for m in room)
    return f"Removing {names} would make room."


def _notes(model, size, memory, free, ram, gpu, fits_disk, fits_memory, local, host):
    size_, memory_, free_, ram_ = (format_size(x) for x in (size, memory, free, ram))
    notes = []
    if size is None:
        notes.append(f"The download size of {model} is not known yet; it shows once the "
                     f"download starts, and the download stops at once if it cannot fit.")
    if fits_disk is False:
        notes.append(f"{model} is a {size_} download but only {free_} is free where "
                     f"Ollama keeps models ({models_dir()}). Free some space first.")
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


__all__ = ["check_fit", "fit_for_size", "free_disk", "gpu_memory", "is_local_host", "make_room",
           "models_dir"]

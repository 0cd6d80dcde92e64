"""Will it fit? Disk, memory and GPU figures for a model, before anything is downloaded.

The download size comes from the catalog, else from an installed copy, else from the
registry's manifest when it can be reached; when none is known the verdict says so, and a
pull started with ``stop_if_no_room`` ends as soon as the first (weights) layer's size shows
it cannot fit.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

import psutil

from . import _client, models
from .catalog import catalog_entry
from .names import parse_name
from .types import FitVerdict
from .units import format_size

MEMORY_OVERHEAD = 1.2
"Running a model takes about its weights plus 20% (KV cache at the default context, runtime)."
MEMORY_BASE = 500_000_000
REGISTRY_TIMEOUT = 3.0


def is_local_host(host: Optional[str] = None) -> bool:
    """True when the Ollama host is this machine (so its disk is ours to measure).

    >>> is_local_host("http://127.0.0.1:11434"), is_local_host("http://gpu-box:11434")
    (True, False)
    """
    name = urllib.parse.urlsplit(_client.resolve_host(host)).hostname or ""
    if name in ("localhost", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def models_dir() -> Path:
    """Where Ollama keeps models: OLLAMA_MODELS, else ~/.ollama/models (every platform)."""
    env = os.environ.get("OLLAMA_MODELS")
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


def registry_size(name: str) -> Optional[int]:
    """The download size from the registry's manifest, or None when it cannot be reached.

    Set CONTEXTPILOT_REGISTRY_LOOKUP=0 to never ask (offline machines, tests).
    """
    if os.environ.get("CONTEXTPILOT_REGISTRY_LOOKUP", "1") == "0":
        return None
    n = parse_name(name)
    url = f"https://{n.host}/v2/{n.namespace}/{n.model}/manifests/{n.tag}"
    request = urllib.request.Request(
        url, headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=REGISTRY_TIMEOUT) as response:
            manifest = json.load(response)
    except (OSError, ValueError):
        return None
    try:
        layers = list(manifest.get("layers") or []) + [manifest.get("config") or {}]
        return sum(int(layer.get("size") or 0) for layer in layers) or None
    except (AttributeError, TypeError, ValueError):  # not a manifest we understand
        return None


def estimate_memory(download_size: int) -> int:
    return int(download_size * MEMORY_OVERHEAD + MEMORY_BASE)


def check_fit(name: str, host: Optional[str] = None) -> FitVerdict:
    """Whether ``name`` fits this machine's disk and memory, with the figures and a message."""
    display = parse_name(name).display
    size, memory, source = _sizes(display, host)
    local = is_local_host(host)
    free = free_disk() if local else None
    ram, gpu = total_memory(), gpu_memory()
    fits_disk = None if size is None or free is None else size <= free
    fits_memory = None if memory is None else memory <= max(ram, gpu or 0)
    notes = _notes(display, size, memory, free, ram, gpu, fits_disk, fits_memory, local, host)
    return FitVerdict(
        model=display, download_size=size, memory_needed=memory, free_disk=free,
        total_memory=ram, gpu_memory=gpu, fits_disk=fits_disk, fits_memory=fits_memory,
        message=" ".join(notes), size_source=source, notes=tuple(notes),
    )


def _sizes(display: str, host: Optional[str]) -> tuple[Optional[int], Optional[int], str]:
    entry = catalog_entry(display)
    if entry is not None:
        return entry.size, entry.memory, "catalog"
    try:
        have = models.installed(display, host)
    except Exception:  # an unreachable host must not stop a fit check
        have = None
    if have is not None:
        return have.size, estimate_memory(have.size), "installed"
    size = registry_size(display)
    if size is not None:
        return size, estimate_memory(size), "registry"
    return None, None, ""


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


def gb(n: Optional[int], binary: bool = False) -> str:
    """Deprecated alias of ``units.format_size`` (decimal units everywhere now; ``binary``
    is ignored). Kept for callers on other branches until they move."""
    return format_size(n)


__all__ = ["check_fit", "free_disk", "gpu_memory", "is_local_host", "models_dir", "gb"]

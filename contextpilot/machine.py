"""This machine's facts: where Ollama keeps models and how much disk is free there, RAM and
GPU memory, and whether an Ollama host is this machine.

A leaf below the services: the pull engine's disk guard and the fit verdict both read the
disk here, so neither needs the other. Callers use ``machine.free_disk()`` (the module's
attribute), so a test can give the machine other figures in one place.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

import psutil

from . import _client, netaddr, settings


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


__all__ = ["free_disk", "gpu_memory", "guard_disk", "is_local_host", "models_dir",
           "total_memory"]

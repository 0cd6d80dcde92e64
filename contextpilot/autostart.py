"""Start a local ``ollama serve`` when nothing answers at a loopback OLLAMA_HOST.

Only for this machine (``netaddr.is_this_machine``: loopback, 0.0.0.0, ::, IPv6 too): a
remote host is never touched. On by default; CONTEXTPILOT_AUTOSTART=0
(or ``autostart=False``) turns it off. The outcome is a typed value with a plain ``message``;
front ends decide how to show it.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import _client, netaddr, settings
from .errors import INSTALL_URL
from .models import server_status

log = logging.getLogger("contextpilot")

POLL_INTERVAL = 0.25
_lock = threading.Lock()
_started: list[subprocess.Popen] = []  # kept so the child is not reaped (or warned about) early


class Autostart(str, enum.Enum):
    """What ``ensure_ollama`` found or did."""

    ALREADY_RUNNING = "already running"
    STARTED = "started"
    NO_BINARY = "no binary"
    REMOTE = "remote host"
    DISABLED = "disabled"
    FAILED = "failed"


@dataclass(frozen=True)
class AutostartResult:
    """The outcome for ``host``; ``message`` is a plain sentence for the user."""

    host: str
    outcome: Autostart
    message: str
    pid: Optional[int] = None
    "The started ``ollama serve`` process (STARTED, or FAILED after starting)."
    log_path: Optional[str] = None
    "Where that process writes its output."

    @property
    def reachable(self) -> bool:
        """True when Ollama answers at ``host`` now."""
        return self.outcome in (Autostart.ALREADY_RUNNING, Autostart.STARTED)


def autostart_enabled(autostart: Optional[bool] = None) -> bool:
    """argument > CONTEXTPILOT_AUTOSTART > on."""
    if autostart is not None:
        return autostart
    return settings.flag("CONTEXTPILOT_AUTOSTART")


def ensure_ollama(host: Optional[str] = None, *, autostart: Optional[bool] = None,
                  wait: float = 15.0, clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> AutostartResult:
    """Make sure Ollama answers at ``host``, starting ``ollama serve`` if it is local and
    not running. Never raises for the expected cases; the result says what happened."""
    url = _client.resolve_host(host)
    with _lock:  # two callers at once start one server
        if server_status(url).reachable:
            return AutostartResult(url, Autostart.ALREADY_RUNNING, f"Ollama is running at {url}.")
        if not netaddr.is_this_machine(url):
            return AutostartResult(url, Autostart.REMOTE, (
                f"Nothing answers at {url}. It is a remote host, so ContextPilot does not start "
                f"Ollama there: start it on that machine ('ollama serve') or check OLLAMA_HOST."))
        if not autostart_enabled(autostart):
            return AutostartResult(url, Autostart.DISABLED, (
                f"Nothing answers at {url}, and starting Ollama automatically is off "
                f"(CONTEXTPILOT_AUTOSTART is off). Start it yourself: ollama serve"))
        binary = shutil.which("ollama")
        if binary is None:
            return AutostartResult(url, Autostart.NO_BINARY, (
                f"Nothing answers at {url}, and Ollama is not installed here (no 'ollama' "
                f"on PATH). Install Ollama: {INSTALL_URL} then run 'ollama serve'."))
        return _start_and_wait(url, binary, wait, clock, sleep)


def _start_and_wait(url: str, binary: str, wait: float, clock: Callable[[], float],
                    sleep: Callable[[float], None]) -> AutostartResult:
    log_path = _log_file()
    try:
        proc = _spawn(binary, url, log_path)
    except OSError as exc:
        return AutostartResult(url, Autostart.FAILED, (
            f"Could not start '{binary} serve': {exc}. Start it yourself: ollama serve"),
            log_path=log_path)
    _started.append(proc)
    log.info("Started 'ollama serve' (pid %s) for %s; output in %s", proc.pid, url, log_path)
    deadline = clock() + wait
    while True:
        if server_status(url).reachable:
            return AutostartResult(url, Autostart.STARTED,
                                   f"Started Ollama ('ollama serve') at {url}.",
                                   pid=proc.pid, log_path=log_path)
        code = proc.poll()
        if code is not None or clock() >= deadline:
            why = f"exited with code {code}" if code is not None else (
                f"did not answer within {wait:g} s")
            return AutostartResult(url, Autostart.FAILED, (
                f"Started 'ollama serve', but it {why}. See its log: {log_path}"),
                pid=proc.pid, log_path=log_path)
        sleep(POLL_INTERVAL)


def _spawn(binary: str, url: str, log_path: str) -> subprocess.Popen:
    # OLLAMA_HOST as `ollama serve` reads it: host:port, an IPv6 address in brackets
    parts = urlsplit(url)
    env = dict(os.environ, OLLAMA_HOST=netaddr.join_host_port(parts.hostname or "127.0.0.1",
                                                               parts.port or 11434))
    detach: dict = {"start_new_session": True}  # Ctrl-C in our terminal does not stop it
    if sys.platform == "win32":
        detach = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP
                  | getattr(subprocess, "DETACHED_PROCESS", 0)}
    with open(log_path, "ab") as log_file:
        return subprocess.Popen([binary, "serve"], stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, env=env, close_fds=True, **detach)


def _log_file() -> str:
    fd, path = tempfile.mkstemp(prefix="contextpilot-ollama-serve-", suffix=".log")
    os.close(fd)
    return path


__all__ = ["Autostart", "AutostartResult", "autostart_enabled", "ensure_ollama"]

"""Who may do what: the rules of a shared app (a public link, a non-loopback bind, a Space).

A private app (the default: bound to 127.0.0.1) allows everything. A shared one limits
downloads to an allowlist (CONTEXTPILOT_ALLOWED_MODELS, else the models installed when the
allowlist is first needed) and keeps delete, unload and cancel for the operator unless
CONTEXTPILOT_ALLOW_DELETE / _UNLOAD / _CANCEL=1. Every check raises NotAllowed, whose
message says why. The Ollama host is operator configuration, never a visitor's input.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from typing import Iterable, Optional

from . import models
from .errors import NotAllowed
from .names import parse_name

MAX_MESSAGE_CHARS = 100_000
"The longest chat message accepted (about 25k tokens); larger ones are refused."
MAX_FILES = 8
ACTIONS = ("delete", "unload", "cancel")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def is_loopback_bind(server_name: Optional[str]) -> bool:
    """True for a bind address only this machine can reach.

    >>> is_loopback_bind("127.0.0.1"), is_loopback_bind("0.0.0.0"), is_loopback_bind(None)
    (True, False, True)
    """
    if not server_name or server_name == "localhost":
        return True
    try:
        return ipaddress.ip_address(server_name).is_loopback
    except ValueError:
        return False


class AccessPolicy:
    """The rules every handler applies before it does anything."""

    def __init__(self, shared: bool = False, allowed_models: Optional[Iterable[str]] = None,
                 allow_delete: bool = False, allow_unload: bool = False,
                 allow_cancel: bool = False, host: Optional[str] = None) -> None:
        self.shared = shared
        self.host = host
        self._allowed = (None if allowed_models is None
                         else frozenset(parse_name(m).key for m in allowed_models))
        self._actions = {"delete": allow_delete, "unload": allow_unload, "cancel": allow_cancel}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, share: bool = False, server_name: Optional[str] = None,
                 host: Optional[str] = None) -> "AccessPolicy":
        """Shared when asked to share, bound beyond loopback, or running on a Space."""
        server_name = server_name or os.environ.get("GRADIO_SERVER_NAME")
        shared = (share or _flag("GRADIO_SHARE") or not is_loopback_bind(server_name)
                  or bool(os.environ.get("SPACE_ID")))
        raw = os.environ.get("CONTEXTPILOT_ALLOWED_MODELS", "")
        allowed = [m.strip() for m in raw.split(",") if m.strip()] or None
        return cls(shared=shared, allowed_models=allowed,
                   allow_delete=_flag("CONTEXTPILOT_ALLOW_DELETE"),
                   allow_unload=_flag("CONTEXTPILOT_ALLOW_UNLOAD"),
                   allow_cancel=_flag("CONTEXTPILOT_ALLOW_CANCEL"), host=host)

    def allowed_models(self) -> Optional[frozenset[str]]:
        """The keys of the models visitors may download (None: any, on a private app)."""
        if not self.shared:
            return None
        with self._lock:
            if self._allowed is None:  # first need: the models installed now
                self._allowed = frozenset(
                    parse_name(m.name).key for m in models.list_models(self.host))
            return self._allowed

    def may_pull(self, name: str) -> bool:
        allowed = self.allowed_models()
        return allowed is None or parse_name(name).key in allowed

    def check_pull(self, name: str) -> None:
        display = parse_name(name).display
        if not self.may_pull(name):
            raise NotAllowed("download", display,
                             f"Downloads of '{display}' are not allowed on this shared app. "
                             f"Choose one of the models offered, or ask the operator to add it "
                             f"to CONTEXTPILOT_ALLOWED_MODELS.")

    def may(self, action: str) -> bool:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        return not self.shared or self._actions[action]

    def check_action(self, action: str, name: Optional[str] = None) -> None:
        display = parse_name(name).display if name else None
        if not self.may(action):
            what = f"{action.capitalize()} of '{display}'" if display else action.capitalize()
            raise NotAllowed(action, display,
                             f"{what} is not allowed on this shared app: it is an operator "
                             f"action (CONTEXTPILOT_ALLOW_{action.upper()}=1 enables it).")

    def check_message(self, text: object, files: int = 0) -> None:
        if not isinstance(text, str):
            raise NotAllowed("chat", message="The message must be text.")
        if len(text) > MAX_MESSAGE_CHARS:
            raise NotAllowed("chat", message=(
                f"The message is too long ({len(text):,} characters; the limit is "
                f"{MAX_MESSAGE_CHARS:,}). Shorten it and send it again."))
        if files > MAX_FILES:
            raise NotAllowed("chat", message=f"Attach at most {MAX_FILES} files to a message.")

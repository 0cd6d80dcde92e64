"""Who a request comes from, as far as the app can tell, and what each visitor holds: the
files they uploaded and the answers they have running.

A browser is told a random visitor id in a cookie (``cp_visitor``, set by the gate on its
first answer) and sends it back with every request of its page: its uploads and its
messages. gradio_client keeps the cookie it gets with ``/config`` for the whole Client. A
caller that keeps no cookie is known by its address.

- **Uploads** belong to the visitor who uploaded them: a path is usable only in requests of
  that visitor (the same cookie; without one, the same address). A visitor who learns
  another's upload path cannot send that file, nor have it fetched back.
- **Answers**: a visitor has at most ``per_session`` chats waiting or streaming per page
  (Gradio's session), and one address at most ``per_address`` (API callers that make a new
  session for every call); past that, their own chat says so and nothing is dropped for
  anyone else.

The gate (an ASGI middleware) and the chat handler both run on the event loop's thread; the
upload records are also read from handler threads, so they have a lock.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

COOKIE = "cp_visitor"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_token(cookie_header: Optional[str]) -> Optional[str]:
    """The visitor id in a Cookie header, if well-formed.

    >>> cookie_token("a=1; cp_visitor=abcdefghijklmnopqrstuvwx; b=2")
    'abcdefghijklmnopqrstuvwx'
    >>> cookie_token("cp_visitor=<script>"), cookie_token(None)
    (None, None)
    """
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and _TOKEN.fullmatch(value.strip()):
            return value.strip()
    return None


@dataclass(frozen=True)
class Visitor:
    """One request's visitor: the cookie's id (None when the request carried none) and the
    peer address."""

    token: Optional[str]
    address: str

    @classmethod
    def of(cls, headers: Mapping[str, str], address: Optional[str]) -> "Visitor":
        """From lower-case headers and the peer address."""
        return cls(cookie_token(headers.get("cookie")), address or "unknown")

    @property
    def owner(self) -> str:
        """Whose uploads this request may use: its cookie's, else its address's."""
        return f"c:{self.token}" if self.token else f"a:{self.address}"


class Uploads:
    """Which visitor uploaded each file (by real path); the oldest records are forgotten
    past ``limit`` (Gradio deletes uploads after six hours anyway)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._owners: OrderedDict[str, set[str]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, paths: Iterable[str], owners: Iterable[str]) -> None:
        """``owners`` uploaded each of ``paths``."""
        reals, owners = [os.path.realpath(p) for p in paths], set(owners)
        with self._lock:
            for real in reals:
                self._owners.setdefault(real, set()).update(owners)
                self._owners.move_to_end(real)
            while len(self._owners) > self.limit:
                self._owners.popitem(last=False)

    def foreign(self, path: str, owner: str) -> bool:
        """Someone uploaded this file, and not ``owner``."""
        real = os.path.realpath(path)
        with self._lock:
            owners = self._owners.get(real)
            return owners is not None and owner not in owners

    def belongs(self, path: str, owner: str) -> bool:
        """``owner`` uploaded this file."""
        with self._lock:
            return owner in self._owners.get(os.path.realpath(path), ())


UPLOADS = Uploads()
"The uploads of this process (Gradio's upload folder is the process's too)."


class TooManyAnswers(Exception):
    """The visitor already has ``count`` chats waiting or streaming."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} answers running")
        self.count = count


class Quota:
    """Chats waiting or streaming, per session and per address (the event loop's thread
    only, like the line of answers)."""

    def __init__(self, per_session: int, per_address: int) -> None:
        self.per_session = per_session
        self.per_address = per_address
        self._held: dict[str, int] = {}

    def take(self, session: str, address: str) -> tuple[str, str]:
        """Count one more chat for ``session`` and ``address``; raises TooManyAnswers when
        either already has its share. Give the returned keys back when the chat ends."""
        keys = (f"s:{session}", f"a:{address}")
        for key, cap in zip(keys, (self.per_session, self.per_address)):
            if self._held.get(key, 0) >= cap:
                raise TooManyAnswers(self._held[key])
        for key in keys:
            self._held[key] = self._held.get(key, 0) + 1
        return keys

    def give_back(self, keys: tuple[str, str]) -> None:
        for key in keys:
            left = self._held.get(key, 0) - 1
            if left > 0:
                self._held[key] = left
            else:
                self._held.pop(key, None)


def too_many_message(exc: TooManyAnswers) -> str:
    """What a chat past its visitor's share says."""
    running = "1 answer" if exc.count == 1 else f"{exc.count} answers"
    return (f"You already have {running} running: wait for one to finish (or stop it), "
            f"then send this again.")


__all__ = ["COOKIE", "Quota", "TooManyAnswers", "UPLOADS", "Uploads", "Visitor",
           "cookie_token", "new_token", "too_many_message"]

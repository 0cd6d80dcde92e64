"""Uploads as visitors see them: ``uploads/<hash>/<name>``, never the server's folder.

Gradio answers an upload with the file's path on the server, in its upload folder
(GRADIO_TEMP_DIR, else the temporary folder, which may name the operator's home or a
virtualenv), and every answer that shows the file names it again (its ``path`` and its
``/file=`` URL). The gate rewrites that folder to ``uploads/`` in what it sends (JSON and
event streams), and back in what it receives (a file's ``path`` in an event's data, a
``/file=`` request), so Gradio and the handlers only ever see real paths and a visitor only
these names. A message's text is left as written: "uploads/..." there is not a file.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Awaitable, Callable, Optional, Sequence
from urllib.parse import quote

VIRTUAL = "uploads/"
Send = Callable[[dict], Awaitable[None]]


def folders() -> list[str]:
    """The upload folder as Gradio names it, and its real path (without a trailing /)."""
    return list(_folders(os.environ.get("GRADIO_TEMP_DIR")))


@functools.lru_cache(maxsize=8)
def _folders(temp_dir: Optional[str]) -> tuple[str, ...]:
    # Gradio's folder follows GRADIO_TEMP_DIR (read on each call): resolved once per value,
    # not on every API request
    from gradio.utils import get_upload_folder

    named = str(get_upload_folder()).rstrip("/")
    return tuple(sorted({named, os.path.realpath(named)}, key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _needles(temp_dir: Optional[str]) -> tuple[tuple[bytes, bytes], ...]:
    """What an answer's text has in place of ``uploads/``, longest first."""
    pairs = [(n, VIRTUAL.encode()) for f in _folders(temp_dir) for n in _forms(f)]
    return tuple(sorted(pairs, key=lambda n: -len(n[0])))


def _forms(folder: str) -> set[bytes]:
    """How ``folder`` + "/" is written in a JSON answer (raw, or ASCII-escaped) and in a URL."""
    return {f"{folder}/".encode(), f"{json.dumps(folder)[1:-1]}/".encode(),
            f"{quote(folder, safe='/')}/".encode()}


def real_path(path: str) -> str:
    """A name a visitor sent, as the server's path (anything else as it is)."""
    return f"{folders()[-1]}/{path[len(VIRTUAL):]}" if path.startswith(VIRTUAL) else path


_PATH_VALUE = re.compile(rb'("path"\s*:\s*")' + re.escape(VIRTUAL.encode()))
"A FileData's ``path`` naming an upload; nothing else (a message's text stays as written)."


def real_body(body: bytes) -> bytes:
    """An event's JSON data with every ``path`` that starts with ``uploads/`` made real."""
    if f'"{VIRTUAL}'.encode() not in body:
        return body
    folder = json.dumps(folders()[-1] + "/")[1:-1].encode()
    return _PATH_VALUE.sub(lambda m: m.group(1) + folder, body)


def file_scope(scope: dict, prefix: str) -> dict:
    """A ``{prefix}uploads/...`` (``/file=``) request's scope, asking for the real file."""
    path = scope.get("path", "")
    at = path.find(prefix + VIRTUAL)
    if at < 0:
        return scope
    real = path[:at + len(prefix)] + real_path(path[at + len(prefix):])
    return dict(scope, path=real, raw_path=quote(real, safe="/=:").encode())


def answers(scope: dict, send: Send) -> tuple[dict, Send]:
    """The scope asking for an uncompressed answer, and a ``send`` that writes the upload
    folder as ``uploads/`` in JSON and event-stream answers."""
    plain = dict(scope, headers=[(k, v) for k, v in scope.get("headers") or ()
                                 if k.lower() != b"accept-encoding"])
    return plain, _Rewriter(send, _needles(os.environ.get("GRADIO_TEMP_DIR")))


class _Rewriter:
    """``send`` with the needles replaced in a text answer; a tail that may begin a needle
    waits for the next part (an event stream's messages end in a blank line, so they never
    wait)."""

    def __init__(self, send: Send, needles: Sequence[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.needles = needles  # longest first
        self.active = False
        self.carry = b""

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or ())
            kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            self.active = b"json" in kind or b"event-stream" in kind
            if self.active:  # the length changes
                message = dict(message, headers=[(k, v) for k, v in headers
                                                 if k.lower() != b"content-length"])
        elif message["type"] == "http.response.body" and self.active:
            data = self.carry + message.get("body", b"")
            for needle, name in self.needles:
                data = data.replace(needle, name)
            more = message.get("more_body", False)
            keep = _partial(data, self.needles) if more else 0
            self.carry = data[len(data) - keep:] if keep else b""
            message = dict(message, body=data[:len(data) - keep])
        await self.send(message)


def _partial(data: bytes, needles: Sequence[tuple[bytes, bytes]]) -> int:
    """The length of the longest tail of ``data`` that begins a needle."""
    longest = 0
    for needle, _ in needles:
        for k in range(min(len(needle) - 1, len(data)), longest, -1):
            if data.endswith(needle[:k]):
                longest = k
                break
    return longest


__all__ = ["VIRTUAL", "answers", "file_scope", "folders", "real_body", "real_path"]

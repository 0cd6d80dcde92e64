"""The gate: an ASGI middleware in front of Gradio's own routes, on every server a
ContextPilot ``App`` is served by (``launch()``, ``gr.mount_gradio_app``, a Space), so what
it refuses never reaches Gradio: nothing is read into memory, fetched or queued for it.

- **Bodies**: none larger than the largest legitimate request of its route (see the limits
  below), refused by its Content-Length before a byte is read, or while it arrives
  (chunked, or a false length); and a body must keep coming (``bodies``: 10 s, then
  16 KB/s on average). 413 and 408, with the connection closed.
- **Attachments** (a ``path`` in any event's data, a FileData): a URL is refused before
  Gradio would fetch it into its cache; a file another visitor uploaded is refused
  (``visitors``). 400 and 403.
- **Gradio's queue**: one address holds at most a quarter of its waiting places (429), so a
  flood from one client never fills it for everyone.
- **Uploads** are recorded as the uploading visitor's; a recorded upload is served back
  (``/file=``) only to them, and named ``uploads/...`` rather than by the server's folder
  (``upload_names``). Every browser gets its visitor cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from typing import Any, Awaitable, Callable, Iterator, Optional

from contextpilot.policy import MAX_FILE_BYTES, MAX_FILES, MAX_MESSAGE_CHARS
from contextpilot.ui import upload_names
from contextpilot.ui.bodies import (TOO_LARGE, Counted, Refusal, read_body, refuse,
                                    replay)
from contextpilot.ui.chat_handlers import HISTORY_BUDGET
from contextpilot.ui.visitors import COOKIE, UPLOADS, Visitor, new_token

log = logging.getLogger("contextpilot")

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API = "/gradio_api"
JSON_CHAR_BYTES = 6
"The most bytes one character of text can take in a JSON body (a control character: \\u0001)."
EVENT_BODY_LIMIT = (2 * MAX_MESSAGE_CHARS + HISTORY_BUDGET) * JSON_CHAR_BYTES + 64 * 1024
"""A queued event (the chat): the message and the system prompt at their limit, a history at
its budget, every character at its longest in JSON, and room for the other inputs and up
to MAX_FILES attachments (a legitimate maximal chat is about 1.2 MB: see tests/test_gate)."""
SAVED_BODY_LIMIT = MAX_FILE_BYTES + EVENT_BODY_LIMIT
"""The page's own unqueued events (``/run/...``) carry the conversations the browser saved,
which its storage keeps to about 5 MB of text (10 MB in the worst encoding): the upload
limit plus a message."""
UPLOAD_BODY_LIMIT = MAX_FILES * (MAX_FILE_BYTES + 4096) + 64 * 1024
"One message's attachments, uploaded together, each at the upload limit, with the form."
MAX_JSON_ITEMS = 500_000
"""Commas, braces and brackets in a JSON body: a saved history of thousands of messages has
far fewer, and a body of ``[{},{},...]`` would cost 30 times its size once parsed."""
QUEUE_SHARE = 4
"One address may hold 1/QUEUE_SHARE of the places of Gradio's queue."
UNQUEUED_AT_ONCE = 4
"""Requests one address may have in progress on the page's unqueued routes (``/run/...``,
which take the saved conversations: up to SAVED_BODY_LIMIT each): outside the queue, nothing
else bounds how many one visitor runs at once."""
_URL = re.compile(r"^\s*([a-z][a-z0-9+.-]*:)?//", re.I)


URL_FILE = ("An attached file could not be used: attachments must be uploaded from this "
            "page, not named by a URL. Attach the file again.")
NOT_YOURS = ("An attached file could not be used: only files uploaded from this page can "
             "be sent. Attach the file again.")
QUEUE_FULL = ("Too many of your requests are waiting: wait for them to finish, then try "
              "again.")
TOO_MANY_AT_ONCE = ("Too many of your requests are running at once: wait for them to "
                    "finish, then try again.")


def route_of(scope: Scope) -> str:
    """The path inside the app (a mounted app's prefix removed), without a trailing /."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.rstrip("/") or "/"


def body_limit(route: str) -> int:
    if route == f"{API}/upload":
        return UPLOAD_BODY_LIMIT
    if unqueued(route):
        return SAVED_BODY_LIMIT
    return EVENT_BODY_LIMIT


def unqueued(route: str) -> bool:
    """The page's events that run outside the queue, with a body."""
    return route.startswith((f"{API}/run/", f"{API}/api/", f"{API}/component_server"))


def joins_queue(route: str) -> bool:
    return route == f"{API}/queue/join" or route.startswith(f"{API}/call/")


def carries_data(route: str) -> bool:
    """Routes whose JSON body holds an event's data (inputs that may name files)."""
    return joins_queue(route) or route.startswith(
        (f"{API}/run/", f"{API}/api/", f"{API}/stream/", f"{API}/component_server"))


class Gate:
    """The ASGI middleware (see the module docstring); ``blocks`` is the app it guards."""

    def __init__(self, app: Any, blocks: Any) -> None:
        self.app = app
        self.blocks = blocks
        self._joins: dict[str, list] = {}  # address -> [its lock, joins using it]
        self._unqueued: dict[str, int] = {}  # address -> its requests in progress there

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers") or ()}
        visitor = Visitor.of(headers, (scope.get("client") or (None,))[0])
        issued = None if visitor.token else new_token()
        send = _with_cookie(send, issued, _secure(scope, headers))
        route, method = route_of(scope), scope.get("method", "GET")
        if route.startswith(f"{API}/file="):  # uploads/... is the upload folder
            scope = upload_names.file_scope(scope, f"{API}/file=")
            route = route_of(scope)
        elif route.startswith(f"{API}/"):  # answers name uploads/..., not the folder
            scope, send = upload_names.answers(scope, send)
        try:
            if method == "GET" and route.startswith(f"{API}/file="):
                self._check_file(route[len(f"{API}/file="):], visitor)
            if method in ("GET", "HEAD", "OPTIONS"):
                return await self.app(scope, receive, send)
            limit = body_limit(route)
            length = headers.get("content-length", "")
            if length.strip().isdigit() and int(length) > limit:
                raise Refusal(413, TOO_LARGE)
            if route == f"{API}/upload":
                return await self._upload(scope, receive, send, visitor, issued)
            body = await read_body(receive, limit)
            if carries_data(route):
                body, scope = _real_paths(body, scope)
                if len(body) > 65536:  # parsing megabytes would hold up every page
                    await asyncio.to_thread(self._check_data, body, visitor)
                else:
                    self._check_data(body, visitor)
            if joins_queue(route):
                return await self._join(scope, replay(body, receive), send, visitor.address)
            if unqueued(route):
                return await self._unqueued_run(scope, replay(body, receive), send,
                                                visitor.address)
        except Refusal as refusal:
            return await refuse(send, refusal)
        await self.app(scope, replay(body, receive), send)

    async def _unqueued_run(self, scope: Scope, receive: Receive, send: Send,
                            address: str) -> None:
        """An unqueued event, at most UNQUEUED_AT_ONCE of one address's at a time."""
        running = self._unqueued.get(address, 0)
        if running >= UNQUEUED_AT_ONCE:
            raise Refusal(429, TOO_MANY_AT_ONCE)
        self._unqueued[address] = running + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self._unqueued[address] - 1
            if left:
                self._unqueued[address] = left
            else:
                del self._unqueued[address]

    async def _join(self, scope: Scope, receive: Receive, send: Send, address: str) -> None:
        """Gradio's queue join, checked against this address's share; one address's joins
        go one at a time (each takes a moment), so the count is exact when it is checked."""
        entry = self._joins.setdefault(address, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                self._check_queue_share(address)
                await self.app(scope, receive, send)
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._joins[address]

    def _check_file(self, path: str, visitor: Visitor) -> None:
        if UPLOADS.foreign(path, visitor.owner):
            raise Refusal(404, "File not found.")

    def _check_data(self, body: bytes, visitor: Visitor) -> None:
        if sum(body.count(c) for c in (b",", b"{", b"[")) > MAX_JSON_ITEMS:
            raise Refusal(413, TOO_LARGE)
        try:
            data = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            return  # not JSON: Gradio answers 422 without looking further
        for path in attached_paths(data):
            if _URL.match(path):
                raise Refusal(400, URL_FILE)
            if UPLOADS.foreign(path, visitor.owner):
                raise Refusal(403, NOT_YOURS)

    def _check_queue_share(self, address: str) -> None:
        """Refuse a join when ``address`` already has its share of the queue's places:
        events that wait (beyond the ones its free slots start at once)."""
        queue = getattr(self.blocks, "_queue", None)
        size = getattr(queue, "max_size", None)
        if not size or size < QUEUE_SHARE:  # no quarter of a tiny queue to keep
            return
        waiting = 0
        for line in list(getattr(queue, "event_queue_per_concurrency_id", {}).values()):
            limit = getattr(line, "concurrency_limit", None)
            free = 0 if limit is None else max(0, limit - getattr(line, "current_concurrency", 0))
            events = list(getattr(line, "queue", ()))
            for event in events[free:] if limit is not None else ():
                client = getattr(getattr(event, "request", None), "client", None)
                waiting += getattr(client, "host", None) == address
        if waiting >= size // QUEUE_SHARE:
            raise Refusal(429, QUEUE_FULL)

    async def _upload(self, scope: Scope, receive: Receive, send: Send, visitor: Visitor,
                      issued: Optional[str]) -> None:
        """Gradio reads the form as it arrives (to disk); counted here, and the paths it
        answers recorded as this visitor's (and, for a request without the cookie, as the
        one just issued to it too)."""
        counted = Counted(receive, UPLOAD_BODY_LIMIT)
        answer = _Answer(send, counted)  # uncompressed: upload_names.answers took that off
        try:
            await self.app(scope, counted, answer)
        except Exception:
            if counted.refusal is None:
                raise
        if counted.refusal is not None:
            return await refuse(send, counted.refusal)
        paths = answer.paths()
        if paths:
            UPLOADS.record(paths, [visitor.owner] + ([f"c:{issued}"] if issued else []))


def _real_paths(body: bytes, scope: Scope) -> tuple[bytes, Scope]:
    """An event's data with the names of uploads (``uploads/...``) made the server's paths,
    and the scope's Content-Length with it."""
    real = upload_names.real_body(body)
    if real is body:
        return body, scope
    headers = [(k, v) for k, v in scope.get("headers") or () if k.lower() != b"content-length"]
    return real, dict(scope, headers=[*headers, (b"content-length", str(len(real)).encode())])


def attached_paths(data: Any) -> Iterator[str]:
    """Every ``path`` of a dict anywhere in ``data`` (a FileData, with or without its
    meta), iteratively: a deep body costs no recursion."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            path = value.get("path")
            if isinstance(path, str):
                yield path
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


class _Answer:
    """``send`` for the upload route: passes the answer on, keeps its body (a short JSON
    list of paths), and drops everything once the body was refused (the gate answers)."""

    def __init__(self, send: Send, counted: Counted) -> None:
        self.send = send
        self.counted = counted
        self.status = 0
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if self.counted.refusal is not None:
            return
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and len(self.body) < 1_000_000:
            self.body += message.get("body", b"")
        await self.send(message)

    def paths(self) -> list[str]:
        if self.status != 200:
            return []
        try:
            answer = json.loads(self.body)
        except ValueError:
            return []
        return [p for p in answer if isinstance(p, str)] if isinstance(answer, list) else []


def _secure(scope: Scope, headers: dict) -> bool:
    return scope.get("scheme") == "https" or headers.get("x-forwarded-proto") == "https"


def _with_cookie(send: Send, token: Optional[str], secure: bool) -> Send:
    """``send`` that gives a browser without one its visitor cookie. In a frame of another
    site (a Space) only a partitioned, secure cookie is kept."""
    if token is None:
        return send
    flags = "SameSite=None; Secure; Partitioned" if secure else "SameSite=Lax"
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; {flags}".encode("latin-1")

    async def with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []),
                                             (b"set-cookie", cookie)])
        await send(message)

    return with_cookie


_building = threading.local()


@contextlib.contextmanager
def app_made_once(blocks: Any) -> Iterator[None]:
    """While ``blocks`` is built, Gradio makes a whole server app (~500 routes, ~0.2 s) at
    every ``Blocks`` exit and ``queue()``, each thrown away by the next (and launch and
    mount make their own): made once here, at the end, for whoever reads ``blocks.app``."""
    from gradio import routes

    install()
    _building.on = True
    try:
        yield
    finally:
        _building.on = False
    blocks.app = routes.App.create_app(blocks, mcp_server=False)


def install() -> None:
    """Put the gate in front of every Gradio app made for a Blocks with ``gated`` set
    (``App``): both ``launch()`` and ``gr.mount_gradio_app`` make it with
    ``gradio.routes.App.create_app``, before it serves its first request. Idempotent."""
    from gradio import routes

    create = routes.App.create_app
    if getattr(create, "_contextpilot_gate", False):
        return

    def create_app(blocks: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_building, "on", False):  # see app_made_once
            return getattr(blocks, "app", None)
        app = create(blocks, *args, **kwargs)
        if getattr(blocks, "gated", False) and not any(
                m.cls is Gate for m in app.user_middleware):
            if app.middleware_stack is not None:
                log.warning("The app is already serving: its gate could not be added.")
            else:
                app.add_middleware(Gate, blocks=blocks)
        return app

    create_app._contextpilot_gate = True  # type: ignore[attr-defined]
    routes.App.create_app = staticmethod(create_app)  # type: ignore[method-assign]


__all__ = ["EVENT_BODY_LIMIT", "Gate", "SAVED_BODY_LIMIT", "UPLOAD_BODY_LIMIT", "app_made_once",
           "install", "read_body", "route_of"]

"""A request's body as the gate reads it: counted as it arrives, refused past its limit
or when it comes too slowly (``Refusal``, answered with ``refuse``), replayed to the app."""

from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable, Optional

Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY_GRACE = 10.0
MIN_BODY_RATE = 16 * 1024
"After BODY_GRACE seconds, a body must have come at this many bytes a second on average."


class Refusal(Exception):
    """Why the gate answers a request itself: an HTTP status and a sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


TOO_LARGE = "The request is too large: attach smaller files, or send a shorter message."
TOO_SLOW = "The request arrived too slowly and was ended. Send it again."


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused past ``limit`` bytes or when it comes too slowly."""
    counted = Counted(receive, limit)
    chunks = []
    while not counted.done:
        message = await counted()
        if counted.refusal is not None:
            raise counted.refusal
        if message["type"] == "http.disconnect":
            raise Refusal(400, "The request ended before its body.")
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


class Counted:
    """``receive`` for the app: the body counted as it arrives, each part awaited within the
    body's deadline. Past the limit or the deadline, the app is told the client left and
    ``refusal`` says why; after the body, messages pass as they are (a disconnect)."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.size = 0
        self.done = False
        self.refusal: Optional[Refusal] = None
        self.start: Optional[float] = None

    async def __call__(self) -> Message:
        if self.done or self.refusal is not None:
            return await self.receive() if self.refusal is None else GONE
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        left = self.start + BODY_GRACE + self.size / MIN_BODY_RATE - loop.time()
        try:
            message = await asyncio.wait_for(self.receive(), max(left, 0.001))
        except asyncio.TimeoutError:
            self.refusal = Refusal(408, TOO_SLOW)
            return GONE
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.limit:
                self.refusal = Refusal(413, TOO_LARGE)
                return GONE
            self.done = not message.get("more_body", False)
        return message


GONE: Message = {"type": "http.disconnect"}


def replay(body: bytes, receive: Receive) -> Receive:
    """The body read by the gate, handed to the app once; then the real ``receive``."""
    sent = False

    async def once() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return once


async def refuse(send: Send, refusal: Refusal) -> None:
    """Answer with the refusal (JSON, as Gradio's own errors) and close the connection: the
    rest of a refused body is never read."""
    body = json.dumps({"detail": refusal.message, "error": refusal.message}).encode()
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["BODY_GRACE", "MIN_BODY_RATE", "Counted", "Refusal", "TOO_LARGE", "TOO_SLOW",
           "read_body", "refuse", "replay"]

"""How the current Gradio request reached the app, for ``AccessPolicy`` (the policy itself
never imports gradio), and which attached files may be read.

Gradio sets the request and the Blocks in context variables for the duration of every event
handler (and ``asyncio.to_thread`` carries them into our threads), so every policy check in
every handler, page or API, public or private, sees the request it serves without each
handler having to ask. Outside an event (a worker thread, a caller we do not know) there is
no request to look at, and the answer is the fail-closed one: a visitor's.
"""

from __future__ import annotations

import os
from typing import Any

from contextpilot.errors import NotAllowed
from contextpilot.policy import MAX_FILE_BYTES, UNKNOWN_VISIT, Visit, is_loopback_bind
from contextpilot.ui.visitors import UPLOADS, Visitor

_CACHED = "_contextpilot_visit"  # the Visit, kept on Gradio's per-event Request object


def current_visit() -> Visit:
    """The ``Visit`` of the request being handled; ``UNKNOWN_VISIT`` when there is none."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:
        return UNKNOWN_VISIT
    visit = request.__dict__.get(_CACHED)  # not getattr: Request delegates unknown names
    if visit is None:
        visit = _describe(request, LocalContext.blocks.get(None))
        request.__dict__[_CACHED] = visit
    return visit


def _describe(request: Any, blocks: Any) -> Visit:
    raw = getattr(request, "request", None)  # the starlette request (None once pickled)
    scope = getattr(raw, "scope", None) or {}
    server = scope.get("server") or (None, None)
    try:
        client = request.client.host if request.client else None
        headers = {str(k).lower(): str(v) for k, v in dict(request.headers).items()}
    except Exception:  # a request we cannot read is a visitor's
        return UNKNOWN_VISIT
    return Visit(client=client, headers=headers, port=server[1] if raw else None,
                 root_path=str(scope.get("root_path") or ""), served=_served(blocks),
                 scheme=str(scope.get("scheme") or "http"))


def _served(blocks: Any) -> bool:
    """What the running server says: a share link (asked for or up), a non-loopback bind
    (launch(), or mount_gradio_app's server_name, 0.0.0.0 unless given), a root path, a
    hosted notebook."""
    if blocks is None:
        return True
    return bool(getattr(blocks, "share", False) or getattr(blocks, "share_url", None)
                or getattr(blocks, "share_requested", False)  # even if the tunnel failed
                or not is_loopback_bind(getattr(blocks, "server_name", None))
                or getattr(blocks, "root_path", "")
                or getattr(blocks, "is_colab", False)
                or getattr(blocks, "is_hosted_notebook", False)
                or getattr(blocks, "space_id", None))


def require_login(user_pass_configured: bool) -> None:
    """CONTEXTPILOT_AUTH set but this request has no logged-in user (the app was launched or
    mounted without ``auth``): refuse, rather than serve an app the operator meant to lock."""
    from gradio.context import LocalContext

    if not user_pass_configured:
        return
    request = LocalContext.request.get(None)
    if request is None or not getattr(request, "username", None):
        raise NotAllowed("login", message=(
            "This app requires a login (CONTEXTPILOT_AUTH is set), but it was started without "
            "one. Ask the operator to launch it with python app.py or "
            "python -m contextpilot serve, or to pass auth= to launch()/mount_gradio_app()."))


def page_session(request: Any) -> str:
    """The page a request came from: Gradio's session hash; '' for none (an API call without
    one, or no request)."""
    return str(getattr(request, "session_hash", None) or "")


def current_session() -> tuple[str, str]:
    """(session, address) of the request being handled: Gradio's session hash (an API call
    without one is a session of its own) and the peer's address."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return page_session(request) or f"call-{id(request)}", current_visit().client or "unknown"


def current_visitor() -> Visitor:
    """Who sent the request being handled (its visitor cookie, else its address); outside a
    request, nobody's: no upload belongs to it."""
    visit = current_visit()  # its headers and peer, read once per request
    return Visitor.of(visit.headers, visit.client)


def genuine_uploads(paths: list[str]) -> list[str]:
    """The attached files, each checked to be a file this visitor uploaded through Gradio's
    /upload route (in its upload folder, its record of uploads and the gate's record of who
    uploaded what), a regular file no larger than MAX_FILE_BYTES. Anything else (a server
    path, a URL, a file Gradio copied into its cache from elsewhere, another visitor's upload,
    a symlink) is refused without saying where it is."""
    from gradio.context import LocalContext
    from gradio.utils import get_upload_folder

    blocks = LocalContext.blocks.get(None)
    uploaded = {os.path.realpath(p) for p in getattr(blocks, "upload_file_set", None) or ()}
    folder = os.path.realpath(get_upload_folder())
    owner = current_visitor().owner if paths else ""
    out = []
    for path in paths:
        real = os.path.realpath(path) if isinstance(path, str) else ""
        inside = os.path.commonpath([real, folder]) == folder if real else False
        if (not inside or real not in uploaded or not UPLOADS.belongs(real, owner)
                or os.path.islink(path) or not os.path.isfile(real)):
            raise NotAllowed("upload", message=(
                "An attached file could not be used: only images uploaded with this "
                "message can be sent. Attach the image again."))
        if os.path.getsize(real) > MAX_FILE_BYTES:
            raise NotAllowed("upload", message=(
                f"An attached image is larger than {MAX_FILE_BYTES // 2**20} MB. "
                f"Attach a smaller one."))
        out.append(real)
    return out

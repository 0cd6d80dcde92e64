"""The size of a model from its registry's manifest, before a byte moves.

``CONTEXTPILOT_REGISTRY_URL`` is the registry for names on the default host (default
``https://registry.ollama.ai``); a name on another host asks that host. Every request has a
timeout; redirects are followed, at most MAX_REDIRECTS of them; the body is capped.
"""

from __future__ import annotations

import json
from typing import Optional

import httpx

from .. import settings
from ..names import DEFAULT_HOST, ModelName
from .lookup import SizeLookup

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
REGISTRY_TIMEOUT = 5.0
"Seconds to connect to, or wait on, a registry before the size counts as unreachable."
MAX_REDIRECTS = 5
MAX_MANIFEST_BYTES = 1_000_000
"A manifest is a few kB; a larger answer is not one (and is not read to the end)."


# -- the registry --------------------------------------------------------------------------

def manifest_url(name: ModelName) -> str:
    """Where the manifest of ``name`` lives (parts are already validated by parse_name)."""
    base = settings.registry_url() if name.host.lower() == DEFAULT_HOST else f"https://{name.host}"
    return f"{base}/v2/{name.namespace}/{name.model}/manifests/{name.tag}"


def registry_size(name: ModelName) -> SizeLookup:
    """config.size + the layers' sizes from the manifest; a clear note when it fails."""
    url = manifest_url(name)
    where = url.split("/v2/", 1)[0]
    try:
        status, body = _get(url)
    except httpx.TooManyRedirects:
        return SizeLookup(note=f"The registry at {where} redirected too many times.")
    except (httpx.HTTPError, OSError) as exc:
        return SizeLookup(note=f"The registry at {where} could not be reached "
                               f"({type(exc).__name__}).")
    if status == 404:
        return SizeLookup(missing=True, note=f"The registry at {where} has no model "
                                             f"{name.display} (check the name and tag).")
    if status != 200:
        text = "" if body.lstrip()[:1] == b"<" else _plain(body)  # an HTML page says nothing
        return SizeLookup(note=f"The registry at {where} answered {status}: "
                               f"{text}".rstrip(": ") + ".")
    size = manifest_total(body)
    if size is None:
        return SizeLookup(note=f"The registry at {where} sent something that is not a manifest.")
    return SizeLookup(size=size, source="registry")


def _get(url: str) -> tuple[int, bytes]:
    """GET with the manifest Accept header, redirects followed (bounded), the body capped."""
    with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS,
                      timeout=httpx.Timeout(REGISTRY_TIMEOUT)) as client:
        with client.stream("GET", url, headers={"Accept": MANIFEST_ACCEPT}) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    break
            return response.status_code, body


MAX_MODEL_BYTES = 1 << 50
"A manifest describing more than this (1 PiB) is broken, not a model (the largest are ~1 TB)."


def manifest_total(body: bytes) -> Optional[int]:
    """The size a manifest describes, or None when ``body`` is not one (the content type is
    not trusted: only the parsed body counts).

    >>> manifest_total(b'{"config": {"size": 10}, "layers": [{"size": 90}, {"size": 5}]}')
    105
    >>> manifest_total(b"<html>"), manifest_total(b'{"layers": "x"}'), manifest_total(b"[]")
    (None, None, None)
    >>> manifest_total(b'{"config": {"size": 1}, "layers": [{"size": 1000000000000000000000}]}')
    """
    try:
        manifest = json.loads(body)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            return None
        parts = [*manifest["layers"], manifest.get("config") or {}]
        sizes = [p.get("size", 0) for p in parts if isinstance(p, dict)]
        if len(sizes) != len(parts) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes):
            return None
        total = sum(sizes)
        return total if 0 < total <= MAX_MODEL_BYTES else None  # 10**30 B is no model
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _plain(body: bytes, limit: int = 160) -> str:
    """A server's error body as one short line of plain text (JSON "error"/"errors" read)."""
    text = body[:4000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            errors = data.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                text = str(errors[0].get("message") or errors[0].get("code") or text)
            elif data.get("error"):
                text = str(data["error"])
    except ValueError:
        pass
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["MANIFEST_ACCEPT", "MAX_REDIRECTS", "REGISTRY_TIMEOUT", "manifest_total",
           "manifest_url", "registry_size"]

"""Installed models: list, exists (briefly cached), details, delete, running, load, unload."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Union

from . import _client
from .errors import OllamaUnavailable
from .names import parse_name
from .types import ModelDetails, ModelInfo, RunningModel, ServerStatus

log = logging.getLogger("contextpilot")

CACHE_TTL = 5.0
"Seconds an installed list is trusted for model_exists (refreshed on a miss, a pull, a delete)."

_cache: dict[str, tuple[float, dict[str, ModelInfo]]] = {}
_cache_lock = threading.Lock()


def list_models(host: Optional[str] = None) -> list[ModelInfo]:
    """The installed models, newest first as Ollama sends them; refreshes the cache."""
    return list(_refresh(_client.resolve_host(host)).values())


def _refresh(url: str) -> dict[str, ModelInfo]:
    """Ask Ollama for the installed list and cache it by key."""
    pairs = _client.installed_list(url)
    by_key = {parse_name(m.name).key: m
              for m in (_model_info(p, r) for p, r in pairs if p.model)
              if _ok(m.name)}
    with _cache_lock:
        _cache[url] = (time.monotonic(), by_key)
    return by_key


def _ok(name: str) -> bool:
    try:
        parse_name(name)
        return True
    except ValueError:
        return False


def _model_info(m, raw: dict) -> ModelInfo:
    d = m.details
    details = raw.get("details")
    ctx = details.get("context_length") if isinstance(details, dict) else None
    caps = raw.get("capabilities")
    return ModelInfo(
        name=m.model or "",
        size=int(m.size or 0),
        modified_at=m.modified_at,
        digest=m.digest or "",
        family=(d.family if d else "") or "",
        parameter_size=(d.parameter_size if d else "") or "",
        quantization=(d.quantization_level if d else "") or "",
        format=(d.format if d else "") or "",
        remote_model=_text(raw.get("remote_model")),
        remote_host=_text(raw.get("remote_host")),
        capabilities=tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list)
        else (),
        context_length=ctx if isinstance(ctx, int) and ctx > 0 else None,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def installed(name: str, host: Optional[str] = None) -> Optional[ModelInfo]:
    """The installed model called ``name`` (any spelling Ollama accepts), or None."""
    key = parse_name(name).key
    url = _client.resolve_host(host)
    with _cache_lock:
        entry = _cache.get(url)
    if entry and time.monotonic() - entry[0] < CACHE_TTL and key in entry[1]:
        return entry[1][key]
    return _refresh(url).get(key)  # a miss or a stale cache: ask Ollama once


def model_exists(name: str, host: Optional[str] = None) -> bool:
    """True when ``name`` is installed. Raises InvalidModelName for a malformed name."""
    return installed(name, host) is not None


def invalidate_cache(host: Optional[str] = None) -> None:
    """Forget the installed list (after a pull or a delete)."""
    with _cache_lock:
        _cache.pop(_client.resolve_host(host), None)


def model_details(name: str, host: Optional[str] = None) -> ModelDetails:
    """Family, sizes, context length, capabilities, license head, parameters, template."""
    display = parse_name(name).display
    url = _client.resolve_host(host)
    r = _client.call(lambda: _client.get_client(url).show(display),
                     _client.Context(url, model=display))
    d = r.details
    info = dict(r.modelinfo or {})
    arch = info.get("general.architecture", "")
    ctx = info.get(f"{arch}.context_length") if arch else None
    return ModelDetails(
        name=display,
        family=(d.family if d else "") or "",
        parameter_size=(d.parameter_size if d else "") or "",
        quantization=(d.quantization_level if d else "") or "",
        format=(d.format if d else "") or "",
        context_length=int(ctx) if isinstance(ctx, (int, float)) else None,
        capabilities=tuple(r.capabilities or ()),
        license="\n".join((r.license or "").strip().splitlines()[:5]),
        parameters=r.parameters or "",
        template=r.template or "",
        modified_at=r.modified_at,
    )


def delete_model(name: str, host: Optional[str] = None) -> None:
    """Remove an installed model. Raises ModelNotFound when it is not installed."""
    display = parse_name(name).display
    url = _client.resolve_host(host)
    try:
        _client.call(lambda: _client.get_client(url, streaming=True).delete(display),
                     _client.Context(url, "delete", model=display))  # no read limit
    finally:
        invalidate_cache(url)
    log.info("Deleted Ollama model '%s'", display)


def running_models(host: Optional[str] = None) -> list[RunningModel]:
    """Models loaded in memory now (/api/ps)."""
    url = _client.resolve_host(host)
    r = _client.call(lambda: _client.get_client(url).ps(), _client.Context(url))
    return [
        RunningModel(
            name=m.model or m.name or "", size=int(m.size or 0), size_vram=int(m.size_vram or 0),
            expires_at=m.expires_at, context_length=m.context_length,
        )
        for m in r.models
    ]


def load_model(name: str, keep_alive: Union[str, float, None] = None,
               host: Optional[str] = None) -> None:
    """Load ``name`` into memory without generating (pre-warm): a generate with no prompt."""
    display = parse_name(name).display
    url = _client.resolve_host(host)
    # loading a big model takes minutes: the client without a read limit
    _client.call(lambda: _client.get_client(url, streaming=True).generate(
        model=display, prompt="", keep_alive=keep_alive),
        _client.Context(url, model=display, during="load"))


def unload_model(name: str, host: Optional[str] = None) -> None:
    """Free the memory ``name`` holds now (keep_alive 0)."""
    display = parse_name(name).display
    url = _client.resolve_host(host)
    _client.call(lambda: _client.get_client(url).generate(
        model=display, prompt="", keep_alive=0),
        _client.Context(url, model=display, during="unload"))


def server_status(host: Optional[str] = None) -> ServerStatus:
    """Never raises: whether Ollama answers at the host, its version, and whether cloud
    models are available (``/api/status``, v0.16.2+; None on an older server)."""
    url = _client.resolve_host(host)
    client = _client.get_client(url)
    try:
        version = _client.call(lambda: client._request_raw("GET", "/api/version").json(),
                               _client.Context(url), delays=())
    except OllamaUnavailable as exc:
        return ServerStatus(host=url, reachable=False, error=str(exc))
    except Exception as exc:  # an odd answer still means something is there
        return ServerStatus(host=url, reachable=True, error=str(exc))
    text = version.get("version", "") if isinstance(version, dict) else ""
    return ServerStatus(host=url, reachable=True, version=str(text), cloud=_cloud(client, url))


def _cloud(client, url: str) -> Optional[bool]:
    try:
        raw = _client.call(lambda: client._request_raw("GET", "/api/status").json(),
                           _client.Context(url), delays=())
        return not bool(raw["cloud"]["disabled"])
    except Exception:  # a server without /api/status (404), or an odd body: unknown
        return None


__all__ = [
    "delete_model", "installed", "invalidate_cache", "list_models",
    "load_model", "model_details", "model_exists", "running_models", "server_status",
    "unload_model",
]

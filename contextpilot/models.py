"""What one Ollama host has and does: installed models (list, exists — briefly cached —,
details, delete), what runs now (running, load, unload), the server's status and its own
recommendations. Each public function takes a model name as text or as a ``ModelName`` and
parses it once; names from the server are parsed where they arrive (``_refresh``)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Union

from . import _client
from .errors import ContextPilotError, OllamaUnavailable
from .names import ModelName, listed_key, parse_name
from .types import ModelDetails, ModelInfo, ModelRecommendation, RunningModel, ServerStatus

Name = Union[str, ModelName]

log = logging.getLogger("contextpilot")

CACHE_TTL = 5.0
"Seconds an installed list is trusted for model_exists (refreshed on a miss, a pull, a delete)."

_cache: dict[str, tuple[float, dict[str, ModelInfo]]] = {}
_cache_lock = threading.Lock()


def list_models(host: Optional[str] = None) -> list[ModelInfo]:
    """The installed models, newest first as Ollama sends them; refreshes the cache."""
    return list(_refresh(_client.resolve_host(host)).values())


def installed_by_key(host: Optional[str] = None) -> dict[str, ModelInfo]:
    """The installed models by their names' ``key``, in Ollama's order; refreshes the cache."""
    return dict(_refresh(_client.resolve_host(host)))


def _refresh(url: str) -> dict[str, ModelInfo]:
    """Ask Ollama for the installed list and cache it by key (a name Ollama lists that is
    not a valid model name is left out)."""
    by_key = {}
    for typed, raw in _client.installed_list(url):
        if typed.model:
            info = _model_info(typed, raw)
            key = listed_key(info.name)
            if key is not None:
                by_key[key] = info
    with _cache_lock:
        _cache[url] = (time.monotonic(), by_key)
    return by_key


def _model_info(m, raw: dict) -> ModelInfo:
    d = m.details
    details = raw.get("details")
    ctx = details.get("context_length") if isinstance(details, dict) else None
    width = details.get("embedding_length") if isinstance(details, dict) else None
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
        embedding_length=width if isinstance(width, int) and width > 0 else None,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def installed(name: Name, host: Optional[str] = None) -> Optional[ModelInfo]:
    """The installed model called ``name`` (any spelling Ollama accepts), or None."""
    key = parse_name(name).key
    url = _client.resolve_host(host)
    with _cache_lock:
        entry = _cache.get(url)
    if entry and time.monotonic() - entry[0] < CACHE_TTL and key in entry[1]:
        return entry[1][key]
    return _refresh(url).get(key)  # a miss or a stale cache: ask Ollama once


def model_exists(name: Name, host: Optional[str] = None) -> bool:
    """True when ``name`` is installed. Raises InvalidModelName for a malformed name."""
    return installed(name, host) is not None


def invalidate_cache(host: Optional[str] = None) -> None:
    """Forget the installed list (after a pull or a delete)."""
    with _cache_lock:
        _cache.pop(_client.resolve_host(host), None)


def model_details(name: Name, host: Optional[str] = None) -> ModelDetails:
    """Family, sizes, context length, capabilities, license head, parameters, template."""
    parsed = parse_name(name)
    display = parsed.display
    url = _client.resolve_host(host)
    r = _client.call(lambda: _client.get_client(url).show(display),
                     _client.model_context(url, parsed))
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


def delete_model(name: Name, host: Optional[str] = None) -> None:
    """Remove an installed model. Raises ModelNotFound when it is not installed."""
    parsed = parse_name(name)
    display = parsed.display
    url = _client.resolve_host(host)
    try:
        _client.call(lambda: _client.get_client(url, streaming=True).delete(display),
                     _client.model_context(url, parsed, "delete"))  # no read limit
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


def load_model(name: Name, keep_alive: Union[str, float, None] = None,
               host: Optional[str] = None) -> None:
    """Load ``name`` into memory without generating (pre-warm): a generate with no prompt."""
    parsed = parse_name(name)
    url = _client.resolve_host(host)
    # loading a big model takes minutes: the client without a read limit
    _client.call(lambda: _client.get_client(url, streaming=True).generate(
        model=parsed.display, prompt="", keep_alive=keep_alive),
        _client.model_context(url, parsed, during="load"))


def unload_model(name: Name, host: Optional[str] = None) -> None:
    """Free the memory ``name`` holds now (keep_alive 0)."""
    parsed = parse_name(name)
    url = _client.resolve_host(host)
    _client.call(lambda: _client.get_client(url).generate(
        model=parsed.display, prompt="", keep_alive=0),
        _client.model_context(url, parsed, during="unload"))


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


def cloud_available(host: Optional[str] = None) -> Optional[bool]:
    """Whether this Ollama offers cloud models (``/api/status``): False when they are
    switched off (OLLAMA_NO_CLOUD), None when not known (an older server, or none there)."""
    url = _client.resolve_host(host)
    return _cloud(_client.get_client(url), url)


def _cloud(client, url: str) -> Optional[bool]:
    try:
        raw = _client.call(lambda: client._request_raw("GET", "/api/status").json(),
                           _client.Context(url), delays=())
        return not bool(raw["cloud"]["disabled"])
    except Exception:  # a server without /api/status (404), or an odd body: unknown
        return None


RECOMMENDATIONS_PATH = "/api/experimental/model-recommendations"


def recommended_models(host: Optional[str] = None) -> list[ModelRecommendation]:
    """The models this Ollama recommends for its machine, with their memory needs; [] when
    the server is older than v0.22.1 (no such route). Raises OllamaUnavailable."""
    url = _client.resolve_host(host)
    client = _client.get_client(url)
    try:
        with _client.translating(url, during="recommendations"):
            data = client._request_raw("GET", RECOMMENDATIONS_PATH).json()
    except ContextPilotError as exc:
        if getattr(exc, "status_code", None) in (404, 405):
            return []
        raise
    items = data.get("recommendations") if isinstance(data, dict) else None
    return [_recommendation(r) for r in items if _is_recommendation(r)] \
        if isinstance(items, list) else []


def _is_recommendation(r: object) -> bool:
    return isinstance(r, dict) and isinstance(r.get("model"), str) and bool(r["model"].strip())


def _recommendation(r: dict) -> ModelRecommendation:
    return ModelRecommendation(
        model=r["model"].strip(), description=str(r.get("description") or ""),
        context_length=_int(r.get("context_length")),
        max_output_tokens=_int(r.get("max_output_tokens")),
        vram_bytes=_int(r.get("vram_bytes")), required_plan=str(r.get("required_plan") or ""))


def _int(value: object) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


__all__ = [
    "cloud_available", "delete_model", "installed", "installed_by_key", "invalidate_cache", "list_models",
    "load_model", "model_details", "model_exists", "recommended_models", "running_models",
    "server_status", "unload_model",
]

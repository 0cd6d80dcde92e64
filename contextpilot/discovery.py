"""The download size of any model before a byte moves: the registry's manifest, the Hugging
Face Hub (for ``hf.co/...`` names), or a probe (a pull through Ollama stopped at once).

Where each lookup goes is settled here, in one place:

- ``CONTEXTPILOT_REGISTRY_URL``: the registry for names on the default host
  (default ``https://registry.ollama.ai``); a name on another host asks that host.
- ``HF_ENDPOINT``: the Hub (default ``https://huggingface.co``), read at call time.
- ``CONTEXTPILOT_REGISTRY_LOOKUP=0``: ask neither (an offline machine); the probe remains.
- ``CONTEXTPILOT_SIZE_PROBE=0``: never start a probe pull.

With ``trusted_only`` (a shared app) nothing here contacts a host a visitor named: only the
default registry and the Hub are asked, and no probe makes Ollama contact another host.
Every request has a timeout; redirects are followed, at most MAX_REDIRECTS of them.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Generator, Optional, cast

import httpx

from . import settings
from .errors import ContextPilotError, ModelNotFound
from .names import DEFAULT_HOST, ModelName

DEFAULT_REGISTRY = settings.URLS["CONTEXTPILOT_REGISTRY_URL"]
DEFAULT_HUB = "https://huggingface.co"
HF_HOSTS = frozenset({"hf.co", "huggingface.co"})
MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
REGISTRY_TIMEOUT = 5.0
"Seconds to connect to, or wait on, a registry before the size counts as unreachable."
MAX_REDIRECTS = 5
MAX_MANIFEST_BYTES = 1_000_000
"A manifest is a few kB; a larger answer is not one (and is not read to the end)."


# -- settings (read through contextpilot.settings, at each call) ------------------------

def registry_url() -> str:
    """The registry for names on the default host: CONTEXTPILOT_REGISTRY_URL, else Ollama's."""
    return settings.url("CONTEXTPILOT_REGISTRY_URL")


def hub_endpoint() -> str:
    """The Hugging Face Hub: HF_ENDPOINT, else huggingface.co (read at call time, unlike
    huggingface_hub, which reads it once at import)."""
    return settings.text("HF_ENDPOINT", DEFAULT_HUB).rstrip("/")


def lookups_enabled() -> bool:
    """False when CONTEXTPILOT_REGISTRY_LOOKUP is off: no registry or Hub request for a size."""
    return settings.flag("CONTEXTPILOT_REGISTRY_LOOKUP")


def probe_enabled() -> bool:
    """False when CONTEXTPILOT_SIZE_PROBE is off: no pull started just to read a size."""
    return settings.flag("CONTEXTPILOT_SIZE_PROBE")


def is_hf(name: ModelName) -> bool:
    return name.host.lower() in HF_HOSTS


# -- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SizeLookup:
    """What one lookup learnt: a size and where it came from, or why there is none."""

    size: Optional[int] = None
    source: str = "unknown"
    note: str = ""
    "Why the size is not known (a sentence), or a caveat about it."
    missing: bool = False
    "The registry (or Ollama) said there is no such model or tag: do not look further."
    arch: Optional[tuple[int, int, int]] = None
    "(layers, KV heads, head size) when the source knows them (a GGUF header)."


# -- the registry --------------------------------------------------------------------------

def manifest_url(name: ModelName) -> str:
    """Where the manifest of ``name`` lives (parts are already validated by parse_name)."""
    base = registry_url() if name.host.lower() == DEFAULT_HOST else f"https://{name.host}"
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


# -- the probe -----------------------------------------------------------------------------

PROBE_TIMEOUT = 20.0
"Seconds a probe waits for Ollama to announce the first layer's size."
PROBE_TTL = 600.0
"Seconds a probe's answer is reused (a page that asks twice starts one probe)."
_probed: dict[tuple[str, str], tuple[float, SizeLookup]] = {}
_probed_lock = threading.Lock()


def cached_probe(name: ModelName, host: Optional[str]) -> Optional[SizeLookup]:
    """What a recent probe of ``name`` on ``host`` found, if one ran."""
    from ._client import resolve_host

    with _probed_lock:
        hit = _probed.get((resolve_host(host), name.key))
    return hit[1] if hit and time.monotonic() - hit[0] < PROBE_TTL else None


def probe_size(name: ModelName, host: Optional[str]) -> SizeLookup:
    """Start the pull through Ollama, read the first layer's total (the weights, nearly the
    whole model) and stop at once; Ollama keeps the partial, so nothing is wasted."""
    from ._client import resolve_host

    found = _probe(name, host)
    if found.size is not None or found.missing:
        with _probed_lock:
            _probed[(resolve_host(host), name.key)] = (time.monotonic(), found)
    return found


def _probe(name: ModelName, host: Optional[str]) -> SizeLookup:
    from .pull import probe_pull  # pull imports hardware, which imports this module

    from .cancel import CancelToken
    from .errors import PullCancelled

    token = CancelToken()  # a probe has a deadline: Ollama may be slow to reach its registry
    timer = threading.Timer(PROBE_TIMEOUT, token.cancel)
    timer.daemon = True
    timer.start()
    stream = cast(Generator, probe_pull(name, host, token))
    try:
        for value in stream:
            if value.done or (value.step == "download" and value.total > 0):
                return SizeLookup(size=value.total, source="probe",
                                  note="the size of its first layer, read by starting the "
                                       "download and stopping it at once")
    except PullCancelled:
        return SizeLookup(note=f"Ollama did not announce the size within {PROBE_TIMEOUT:g} s.")
    except ModelNotFound:
        return SizeLookup(missing=True, note=f"Ollama found no model {name.display} in its "
                                             f"registry (check the name and tag).")
    except ContextPilotError as exc:
        return SizeLookup(note=str(exc))
    finally:
        timer.cancel()
        stream.close()
    return SizeLookup(note="Ollama's pull ended before it announced a size.")


__all__ = ["SizeLookup", "hub_endpoint", "lookups_enabled", "manifest_total",
           "recommended_models",
           "manifest_url", "probe_enabled", "probe_size", "registry_size", "registry_url"]


# -- the server's own recommendations ------------------------------------------------------

RECOMMENDATIONS_PATH = "/api/experimental/model-recommendations"


def recommended_models(host: Optional[str] = None) -> list:
    """The models this Ollama recommends for its machine, with their memory needs; [] when
    the server is older than v0.22.1 (no such route). Raises OllamaUnavailable."""
    from . import _client
    from .types import ModelRecommendation

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
    out = []
    for r in items if isinstance(items, list) else []:
        if isinstance(r, dict) and isinstance(r.get("model"), str) and r["model"].strip():
            out.append(ModelRecommendation(
                model=r["model"].strip(), description=str(r.get("description") or ""),
                context_length=_int(r.get("context_length")),
                max_output_tokens=_int(r.get("max_output_tokens")),
                vram_bytes=_int(r.get("vram_bytes")),
                required_plan=str(r.get("required_plan") or "")))
    return out


def _int(value: object) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

"""One Ollama host as the app sees it: what it has (installed models with their capabilities,
Ollama's recommendations), what it can do (fit a model, download, load, unload, delete) and
what it says (its status, starting a local ``ollama serve`` when nothing answers).

A ``Host`` knows nothing of the app's rules: ``Service`` holds one or more of them and applies
the policy (who may do what, what a visitor may see) above. Methods are blocking; handlers
run them in a thread. Nothing here formats UI beyond the pure ``render`` helpers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

import contextpilot as cp
from contextpilot import models as _models
from contextpilot.fit.catalog import catalog, catalog_entry
from contextpilot.ui import render_models
from contextpilot.units import format_size

log = logging.getLogger("contextpilot")

RECOMMENDATIONS_TTL = 600.0
CLOUD_TTL = 10.0
"Seconds whether cloud models are switched on (/api/status) is trusted for the picker."
AUTOSTART_PAUSE = 60.0
"Seconds after starting ``ollama serve`` (or failing to) before trying again."
_details_cache: dict[tuple[str, str, str], cp.ModelDetails] = {}
_recommendations_cache: dict[str, tuple[float, list]] = {}
_cache_lock = threading.Lock()


def key(name: str) -> str:
    """A name's canonical key (equal keys: the same model to Ollama); the text itself for a
    name that cannot be parsed."""
    try:
        return cp.parse_name(name).key
    except cp.InvalidModelName:
        return name


class Models:
    """One host's installed list (with capabilities) and the catalog, as the picker sees them.
    ``error`` is the library's message when the list could not be read (not yet made public:
    ``Service`` does that)."""

    def __init__(self, host: "Host", may_pull: Optional[Callable[[str], bool]] = None) -> None:
        self.host = host
        self.may_pull = may_pull
        "Which downloads the picker may offer (None: all)."
        self.installed: list[cp.ModelInfo] = []
        self.capabilities: dict[str, tuple[str, ...]] = {}
        self.recommendations: list = []
        self.cloud: Optional[bool] = None
        "Cloud models offered by this Ollama: False when switched off (/api/status)."
        self.error = ""

    def refresh(self, with_capabilities: bool = True,
                listing: Optional[Callable[[], list[cp.ModelInfo]]] = None,
                host_of: Optional[Callable[[cp.ModelInfo], Optional["Host"]]] = None
                ) -> "Models":
        """The models from ``listing`` (default: this host's), with their capabilities;
        ``host_of``: the host to ask about a model (default: this one; None: no host)."""
        try:
            self.installed = listing() if listing else cp.list_models(self.host.url)
            self.error = ""
        except cp.ContextPilotError as exc:
            self.installed, self.error = [], str(exc)
        if not self.error:
            self.recommendations = self.host.recommendations()
            self.cloud = self.host.cloud()
        for m in self.installed:
            if m.capabilities or m.is_cloud:  # today's /api/tags says them: no /api/show per
                # model; and about a cloud model (whatever its name) Ollama asks ollama.com
                self.capabilities[m.name] = m.capabilities
                continue
            host = host_of(m) if host_of else self.host
            if with_capabilities and host is not None:
                d = host.details(m.name, m.digest)
                self.capabilities[m.name] = d.capabilities if d else ()
        return self

    def keys(self) -> set[str]:
        return {key(m.name) for m in self.installed}

    def find(self, name: str) -> Optional[cp.ModelInfo]:
        k = key(name)
        return next((m for m in self.installed if key(m.name) == k), None)

    def names(self) -> list[str]:
        return [m.name for m in self.installed]

    def choices(self) -> list[tuple[str, str]]:
        """The picker's choices, grouped Installed / Recommended / Cloud / Download (see
        render); only downloads ``may_pull`` allows are offered."""
        return render_models.model_choices(self.installed, catalog(), self.keys(), key,
                                           self.capabilities, self.may_pull,
                                           self.recommendations, cloud=self.cloud)

    def as_json(self, status: cp.ServerStatus) -> dict:
        keys = self.keys()
        return {
            "host": status.host,
            "version": status.version,
            "error": self.error,
            "installed": [_info_json(m) for m in self.installed],
            "recommendations": [dict(vars(r)) for r in self.recommendations],
            "catalog": [_entry_json(e, key(e.name) in keys) for e in catalog()],
        }

    def default(self, configured: str) -> str:
        if configured:
            return configured
        chat_models = [m.name for m in self.installed if m.can_chat or (
            m.can_chat is None and "embed" not in m.name)]
        return chat_models[0] if chat_models else catalog()[0].name


class Host:
    """One Ollama server: ``url`` is operator configuration (None: OLLAMA_HOST, else
    localhost), never a visitor's input."""

    def __init__(self, url: Optional[str], preload: bool = True, name: str = "") -> None:
        self.url = url
        self.name = name
        "Its name in the app's fleet (OLLAMA_HOSTS), or its host:port."
        self.preload = preload
        self._autostart_lock = threading.Lock()
        self._autostart_at: Optional[float] = None
        self._autostart_result: Optional[cp.AutostartResult] = None
        self._cloud: tuple[float, Optional[bool]] = (-CLOUD_TTL, None)

    # -- what it says ------------------------------------------------------------------

    def status(self) -> cp.ServerStatus:
        s = cp.server_status(self.url)
        if s.reachable:
            self._cloud = (time.monotonic(), s.cloud)
        return s

    def cloud(self) -> Optional[bool]:
        """Whether this Ollama offers cloud models (False: switched off), asked at most
        every CLOUD_TTL seconds."""
        asked, said = self._cloud
        if time.monotonic() - asked < CLOUD_TTL:
            return said
        said = _models.cloud_available(self.url)
        self._cloud = (time.monotonic(), said)
        return said

    def autostart(self) -> cp.AutostartResult:
        """``ensure_ollama``, at most one start a minute: a page load or message must not
        start a server again while an earlier one is still coming up (or has failed)."""
        with self._autostart_lock:
            now = time.monotonic()
            recent = self._autostart_at is not None and now - self._autostart_at < (
                AUTOSTART_PAUSE)
            last = self._autostart_result
            if recent and last is not None and last.outcome in (
                    cp.Autostart.STARTED, cp.Autostart.FAILED):
                return cp.ensure_ollama(self.url, autostart=False)
            result = cp.ensure_ollama(self.url)
            if result.outcome in (cp.Autostart.STARTED, cp.Autostart.FAILED):
                self._autostart_at, self._autostart_result = now, result
            return result

    # -- what it has -------------------------------------------------------------------

    def models(self, with_capabilities: bool = True,
               may_pull: Optional[Callable[[str], bool]] = None) -> Models:
        return Models(self, may_pull).refresh(with_capabilities)

    def details(self, name: str, digest: str = "") -> Optional[cp.ModelDetails]:
        """model_details, cached per digest (a model's capabilities never change)."""
        k = (self.url or "", key(name), digest)
        with _cache_lock:
            if digest and k in _details_cache:
                return _details_cache[k]
        try:
            d = cp.model_details(name, self.url)
        except cp.ContextPilotError:
            return None
        if digest:
            with _cache_lock:
                _details_cache[k] = d
        return d

    def capabilities(self, name: str) -> Optional[tuple[str, ...]]:
        """Installed: Ollama's word; else the catalog's; None when nobody knows yet."""
        parsed = cp.parse_name(name)
        have = _models.installed(parsed, self.url)
        if have is not None and have.capabilities:  # today's /api/tags says them itself
            return have.capabilities
        if have is not None:
            d = self.details(have.name, have.digest)
            return d.capabilities if d else None
        if parsed.is_cloud:  # ollama.com's own word, through the local server
            d = self.details(name)
            return d.capabilities if d else None
        entry = catalog_entry(parsed)
        return entry.capabilities if entry else None

    def installed(self, name: str) -> bool:
        return cp.model_exists(name, self.url)

    def family(self, name: str) -> str:
        have = _models.installed(name, self.url)
        return have.family if have is not None else ""

    def recommendations(self) -> list:
        """Ollama's recommendations for its machine ([] on servers without them), asked at
        most every RECOMMENDATIONS_TTL seconds."""
        now = time.monotonic()
        with _cache_lock:
            cached = _recommendations_cache.get(self.url or "")
        if cached and now - cached[0] < RECOMMENDATIONS_TTL:
            return cached[1]
        try:
            found = cp.recommended_models(self.url)
        except cp.ContextPilotError:
            found = []
        with _cache_lock:
            _recommendations_cache[self.url or ""] = (now, found)
        return found

    # -- what it can do ----------------------------------------------------------------

    def fit(self, name: str, context_length: Optional[int] = None, probe: bool = True,
            trusted_only: bool = True, token: Optional[bool] = None) -> cp.FitVerdict:
        return cp.check_fit(name, self.url, context_length=context_length, probe=probe,
                            trusted_only=trusted_only, token=token)

    def quants(self, repo: str, token: Optional[bool] = None) -> list[cp.HubQuant]:
        """A Hub repository's quantisations with a fit verdict for this host's machine
        (``token``: the Hugging Face token sent, see ``contextpilot.hub``)."""
        return cp.model_files(repo, host=self.url, token=token)

    def start_preload(self, name: str) -> None:
        """Load ``name`` into memory in the background, so the first answer is quick."""
        if not self.preload:
            return
        url = self.url

        def run() -> None:
            try:
                cp.load_model(name, host=url)
            except cp.ContextPilotError as exc:
                log.warning("Pre-loading %s failed: %s", name, exc)

        threading.Thread(target=run, name=f"preload {name}", daemon=True).start()

    def delete(self, name: cp.ModelName) -> str:
        cp.delete_model(name, self.url)
        return f"Deleted {name.display}."

    def load(self, name: cp.ModelName) -> str:
        if not cp.model_exists(name, self.url):
            raise cp.ModelNotFound(name.display, installed_only=True)
        cp.load_model(name, host=self.url)
        return f"{name.display} is loaded in memory."

    def unload(self, name: cp.ModelName) -> str:
        cp.unload_model(name, self.url)
        return f"{name.display} was unloaded from memory."

    def cancel(self, name: cp.ModelName) -> str:
        if cp.cancel_pull(name, self.url):
            return f"Cancelled the download of {name.display}; starting it again resumes it."
        return f"{name.display} is not downloading."


def _info_json(m: cp.ModelInfo) -> dict:
    return {"name": m.name, "size": m.size, "size_text": format_size(m.size),
            "family": m.family, "parameter_size": m.parameter_size,
            "quantization": m.quantization,
            "modified_at": m.modified_at.isoformat() if m.modified_at else None}


def _entry_json(e, installed: bool) -> dict:
    return {"name": e.name, "size": e.size, "size_text": format_size(e.size),
            "memory": e.memory, "parameters": e.parameters,
            "capabilities": list(e.capabilities), "description": e.description,
            "installed": installed}

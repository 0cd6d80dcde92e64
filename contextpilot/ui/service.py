"""What the app's handlers call: the library plus the app's rules, for one Ollama host.

Every method that takes a model name validates it (``parse_name``) and applies the
``AccessPolicy`` before anything reaches Ollama, so a crafted request to any event handler,
public or private, gets the same checks as the page. Methods are blocking; handlers run
them in a thread. Nothing here formats UI beyond the pure ``render`` helpers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Optional

import contextpilot as cp
from contextpilot import models as _models
from contextpilot import netaddr, settings
from contextpilot._client import redact, resolve_host
from contextpilot.fit.catalog import catalog, catalog_entry
from contextpilot.policy import ACTIONS, AccessPolicy
from contextpilot.ui import render, render_models
from contextpilot.ui.serving import require_login
from contextpilot.units import format_size

log = logging.getLogger("contextpilot")

HIDDEN_HOST = "the configured host"
"What a shared app's visitors see instead of the Ollama server's address."

_details_cache: dict[tuple[str, str, str], cp.ModelDetails] = {}
_details_lock = threading.Lock()
_recommendations_cache: dict[str, tuple[float, list]] = {}
RECOMMENDATIONS_TTL = 600.0


def key(name: str) -> str:
    try:
        return cp.parse_name(name).key
    except cp.InvalidModelName:
        return name


def preload_default() -> bool:
    """CONTEXTPILOT_PRELOAD (on): load a model into memory after its download."""
    return settings.flag("CONTEXTPILOT_PRELOAD")


@dataclass(frozen=True)
class Note:
    """The line under the picker, and what it implies for the controls beside it."""

    html: str
    installed: bool = False
    needs_override: bool = False
    "The model may not fit: show “Download anyway”."


class Models:
    """The installed list (with capabilities) and the catalog, as the dropdown sees them."""

    def __init__(self, service: "Service") -> None:
        self.service = service
        self.installed: list[cp.ModelInfo] = []
        self.capabilities: dict[str, tuple[str, ...]] = {}
        self.recommendations: list = []
        self.error = ""

    def refresh(self, with_capabilities: bool = True) -> "Models":
        try:
            self.installed, self.error = cp.list_models(self.service.host), ""
        except cp.ContextPilotError as exc:
            self.installed, self.error = [], self.service.public(str(exc))
        if not self.error:
            self.recommendations = self.service.recommendations()
        if with_capabilities:
            for m in self.installed:
                d = self.service.details(m.name, m.digest)
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
        render)."""
        return render.model_choices(self.installed, catalog(), self.keys(), key,
                                    self.capabilities, self.service.may_pull,
                                    self.recommendations)

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
        chat_models = [m.name for m in self.installed if "embed" not in m.name]
        return chat_models[0] if chat_models else catalog()[0].name


class Service:
    """The library and the rules for one host; see the module docstring."""

    def __init__(self, host: Optional[str], policy: AccessPolicy, preload: bool,
                 login_required: bool = False) -> None:
        self._host = host
        self.login_required = login_required
        self.policy = policy
        self.preload = preload
        self._autostart_lock = threading.Lock()
        self._autostart_at: Optional[float] = None
        self._autostart_result: Optional[cp.AutostartResult] = None

    @property
    def host(self) -> Optional[str]:
        """The Ollama host; every call to Ollama asks for it, so this is where a request
        without the login CONTEXTPILOT_AUTH requires is refused (see serving.require_login)."""
        require_login(self.login_required)
        return self._host

    def public(self, text: str, paths: bool = True) -> str:
        """``text`` as a visitor of a shared app may see it: without the Ollama server's
        address (with it they could use Ollama directly, past every rule here) and, unless
        ``paths`` is False (HTML), without the server's paths. Unchanged on a private app."""
        if not text or not self.policy.shared:
            return text
        url = resolve_host(self._host)
        for form in sorted({url, url.split("://", 1)[-1]}, key=len, reverse=True):
            text = text.replace(form, HIDDEN_HOST)
        name = netaddr.host_of(url)
        if name:  # alone too: a TLS error names the host its certificate is not valid for
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)", HIDDEN_HOST, text,
                          flags=re.I)
        return redact(text) if paths else text

    def server_status(self) -> cp.ServerStatus:
        """cp.server_status for this host, its host and error as ``public`` shows them."""
        s = cp.server_status(self.host)
        if not self.policy.shared:
            return s
        return dataclasses.replace(s, host=HIDDEN_HOST, error=self.public(s.error))

    def status_html(self) -> str:
        """The status line: Ollama's host and version, or what is wrong and how to fix it.
        When nothing answers at a local host, start 'ollama serve' if we can, and say so."""
        status = self.server_status()
        if status.reachable:
            return render.status_html(status, mode=self.mode_html())
        result = self._autostart()
        said = self.public(result.message)
        if result.reachable:
            return render.status_html(self.server_status(), note=said, mode=self.mode_html())
        return render.status_html(status, hint=said, mode=self.mode_html())

    def mode_html(self) -> str:
        """Which mode the app is in for this request: "Private", or "Shared: downloads
        limited to ..." (the allowlist, or the models installed when it is first needed)."""
        if not self.policy.shared:
            return render.mode_html(False)
        allowed: Optional[list[str]]
        try:
            allowed = self.policy.allowed_names()
        except cp.ContextPilotError:  # the installed models cannot be listed yet
            allowed = None
        return render.mode_html(True, allowed, [a for a in ACTIONS if not self.policy.may(a)])

    def _autostart(self) -> cp.AutostartResult:
        # One attempt a minute at most: a page load or message must not start a server
        # again while an earlier one is still coming up (or has failed for a reason).
        with self._autostart_lock:
            now = time.monotonic()
            recent = self._autostart_at is not None and now - self._autostart_at < 60
            last = self._autostart_result
            if recent and last is not None and last.outcome in (
                    cp.Autostart.STARTED, cp.Autostart.FAILED):
                return cp.ensure_ollama(self.host, autostart=False)
            result = cp.ensure_ollama(self.host)
            if result.outcome in (cp.Autostart.STARTED, cp.Autostart.FAILED):
                self._autostart_at, self._autostart_result = now, result
            return result

    def models(self, with_capabilities: bool = True) -> Models:
        return Models(self).refresh(with_capabilities)

    def details(self, name: str, digest: str = "") -> Optional[cp.ModelDetails]:
        """model_details, cached per digest (a model's capabilities never change)."""
        k = (self.host or "", key(name), digest)
        with _details_lock:
            if digest and k in _details_cache:
                return _details_cache[k]
        try:
            d = cp.model_details(name, self.host)
        except cp.ContextPilotError:
            return None
        if digest:
            with _details_lock:
                _details_cache[k] = d
        return d

    def capabilities(self, name: str) -> Optional[tuple[str, ...]]:
        """Installed: Ollama's word; else the catalog's; None when nobody knows yet."""
        have = _models.installed(name, self.host)
        if have is not None and have.capabilities:  # today's /api/tags says them itself
            return have.capabilities
        if have is not None:
            d = self.details(have.name, have.digest)
            return d.capabilities if d else None
        if cp.parse_name(name).is_cloud:  # ollama.com's own word, through the local server
            d = self.details(name)
            return d.capabilities if d else None
        entry = catalog_entry(name)
        return entry.capabilities if entry else None

    def installed(self, name: str) -> bool:
        return cp.model_exists(name, self.host)

    def family(self, name: str) -> str:
        have = _models.installed(name, self.host)
        return have.family if have is not None else ""

    def note(self, model: Optional[str], data: Optional[Models] = None) -> str:
        """The line under the picker (HTML): see ``note_state``."""
        return self.note_state(model, data).html

    def note_state(self, model: Optional[str], data: Optional[Models] = None,
                   refused: bool = False) -> Note:
        """Installed, downloading, or not installed with the fit verdict (once); whether
        "Download anyway" applies. ``refused``: a download just waited for it."""
        if not model:
            return Note("")
        try:
            name = cp.parse_name(model).display
        except cp.InvalidModelName as exc:
            return Note(render.note_html("warn", render.escape(str(exc))))
        data = data or self.models(with_capabilities=False)
        if data.error:
            return Note("")
        have = data.find(name)
        if cp.parse_name(name).is_cloud:  # never downloaded nor fit-checked here
            caps = data.capabilities.get(have.name) if have is not None else None
            return Note(render.cloud_note(name, caps), installed=True)  # no Download
        if have is not None:
            caps = data.capabilities.get(have.name)
            if caps is None:
                d = self.details(have.name, have.digest)
                caps = d.capabilities if d else ()
            return Note(render.model_note(name, have, None, caps), installed=True)
        if cp.is_pulling(name, self.host):
            return Note(render.note_html(
                "busy", f"{render.escape(name)} is downloading now (see Downloads)."))
        if not self.may_pull(name):
            return Note(render.note_html(
                "stop", f"{render.escape(name)} is not installed, and downloads of it are "
                        f"not allowed on this shared app."))
        verdict = self.fit(name)
        # On a shared app the override is the operator's: visitors are not offered it.
        return Note(render.model_note(name, None, catalog_entry(name))
                    + self.public(render_models.fit_line(verdict, refused)),
                    needs_override=render_models.needs_override(verdict)
                    and not self.policy.shared)

    def fit(self, name: str, context_length: Optional[int] = None,
            probe: bool = True) -> cp.FitVerdict:
        """The fit verdict; on a shared app only the default registry and the Hub are asked
        (never a host a visitor named)."""
        return cp.check_fit(name, self.host, context_length=context_length, probe=probe,
                            trusted_only=self.policy.shared)

    def quants(self, repo: str) -> list[cp.HubQuant]:
        """A Hub repository's quantisations with a fit verdict for this Ollama's machine
        (only the Hub is contacted)."""
        return cp.model_files(repo, host=self.host)

    def recommendations(self) -> list:
        """Ollama's recommendations for its machine ([] on servers without them), asked at
        most every RECOMMENDATIONS_TTL seconds."""
        now = time.monotonic()
        with _details_lock:
            cached = _recommendations_cache.get(self.host or "")
        if cached and now - cached[0] < RECOMMENDATIONS_TTL:
            return cached[1]
        try:
            found = cp.recommended_models(self.host)
        except cp.ContextPilotError:
            found = []
        with _details_lock:
            _recommendations_cache[self.host or ""] = (now, found)
        return found

    def may_pull(self, name: str) -> bool:
        """Whether the policy lets visitors download ``name`` (False when it cannot tell)."""
        try:
            return self.policy.may_pull(name)
        except cp.ContextPilotError:  # the allowlist needs Ollama, which is down
            return False

    def before_pull(self, name: str, override: bool) -> str:
        """Policy (raises NotAllowed), then the fit check: '' to go, else why it waits.
        On a shared app the override is the operator's: a visitor cannot fill their disk."""
        self.policy.check_pull(name)
        if self.installed(name) or cp.parse_name(name).is_cloud:  # cloud: runs on ollama.com
            return ""
        if override and not self.policy.shared:
            return ""
        # No probe here: the pull starts now anyway, and stops at its first layer when the
        # disk is too small; the note under the dropdown probed (and cached) already.
        verdict = self.fit(name, probe=False)
        refusal = render_models.fit_refusal(verdict)
        if refusal and self.policy.shared:
            return self.public(
                f"{verdict.message} Not downloading {verdict.model}: on this shared app "
                f"only the operator can download a model that may not fit.")
        return refusal

    def record_use(self, name: str) -> None:
        """Remember when this app last chatted with ``name`` (for make-room advice)."""
        from contextpilot.fit import usage

        usage.record_use(name)

    def start_preload(self, name: str) -> None:
        """Load ``name`` into memory in the background, so the first answer is quick."""
        if not self.preload:
            return
        host = self.host  # here, in the request's context (the thread has none)

        def run() -> None:
            try:
                cp.load_model(name, host=host)
            except cp.ContextPilotError as exc:
                log.warning("Pre-loading %s failed: %s", name, exc)

        threading.Thread(target=run, name=f"preload {name}", daemon=True).start()

    # -- management actions (all policy-checked) -------------------------------------------

    def delete(self, name: str) -> str:
        display = cp.parse_name(name).display
        self.policy.check_action("delete", display)
        cp.delete_model(display, self.host)
        return f"Deleted {display}."

    def load(self, name: str) -> str:
        display = cp.parse_name(name).display
        if not self.installed(display):
            raise cp.ModelNotFound(display, installed_only=True)
        cp.load_model(display, host=self.host)
        return f"{display} is loaded in memory."

    def unload(self, name: str) -> str:
        display = cp.parse_name(name).display
        self.policy.check_action("unload", display)
        cp.unload_model(display, self.host)
        return f"{display} was unloaded from memory."

    def cancel(self, name: str) -> str:
        display = cp.parse_name(name).display
        self.policy.check_action("cancel", display)
        if cp.cancel_pull(display, self.host):
            return f"Cancelled the download of {display}; starting it again resumes it."
        return f"{display} is not downloading."


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

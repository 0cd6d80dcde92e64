"""What the app's handlers call: the app's rules above one or more Ollama hosts.

``Host`` (``ui/host.py``) is what one Ollama server has, can do and says. ``Service`` holds
the hosts and applies the rules above them: every method that takes a model name validates
it (``parse_name``) and applies the ``AccessPolicy`` before anything reaches Ollama, so a
crafted request to any event handler, public or private, gets the same checks as the page;
and every text a visitor of a shared app may see goes through ``public`` (no server address,
no server path). Methods are blocking; handlers run them in a thread.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Optional

import contextpilot as cp
from contextpilot import netaddr, settings
from contextpilot._client import redact, resolve_host
from contextpilot.fit.catalog import catalog_entry
from contextpilot.policy import ACTIONS, AccessPolicy
from contextpilot.ui import render, render_models
from contextpilot.ui.host import Host, Models, key
from contextpilot.ui.serving import require_login

log = logging.getLogger("contextpilot")

HIDDEN_HOST = "the configured host"
"What a shared app's visitors see instead of the Ollama server's address."

__all__ = ["HIDDEN_HOST", "Host", "Models", "Note", "Service", "key", "preload_default"]


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
    downloading: bool = False
    "It is downloading now: no Download button (the Downloads panel shows it)."


class Service:
    """The app's rules above its Ollama host(s); see the module docstring."""

    def __init__(self, host: Optional[str], policy: AccessPolicy, preload: bool,
                 login_required: bool = False) -> None:
        self._host = Host(host, preload)
        self.login_required = login_required
        self.policy = policy

    @property
    def current(self) -> Host:
        """The host this request uses; every call to Ollama asks for it, so this is where a
        request without the login CONTEXTPILOT_AUTH requires is refused
        (see serving.require_login)."""
        require_login(self.login_required)
        return self._host

    @property
    def host(self) -> Optional[str]:
        """The current host's address (operator configuration; None: OLLAMA_HOST)."""
        return self.current.url

    @property
    def preload(self) -> bool:
        return self._host.preload

    def public(self, text: str, paths: bool = True) -> str:
        """``text`` as a visitor of a shared app may see it: without the Ollama server's
        address (with it they could use Ollama directly, past every rule here) and, unless
        ``paths`` is False (HTML), without the server's paths. Unchanged on a private app."""
        if not text or not self.policy.shared:
            return text
        url = resolve_host(self._host.url)
        for form in sorted({url, url.split("://", 1)[-1]}, key=len, reverse=True):
            text = text.replace(form, HIDDEN_HOST)
        name = netaddr.host_of(url)
        if name:  # alone too: a TLS error names the host its certificate is not valid for
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)", HIDDEN_HOST, text,
                          flags=re.I)
        return redact(text) if paths else text

    def server_status(self) -> cp.ServerStatus:
        """cp.server_status for this host, its host and error as ``public`` shows them."""
        s = self.current.status()
        if not self.policy.shared:
            return s
        return dataclasses.replace(s, host=HIDDEN_HOST, error=self.public(s.error))

    def status_html(self) -> str:
        """The status line: Ollama's host and version, or what is wrong and how to fix it.
        When nothing answers at a local host, start 'ollama serve' if we can, and say so."""
        status = self.server_status()
        if status.reachable:
            return render.status_html(status, mode=self.mode_html())
        result = self.current.autostart()
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

    def models(self, with_capabilities: bool = True) -> Models:
        """The current host's models; the picker offers only the downloads the policy
        allows, and an error reads as ``public`` shows it."""
        data = self.current.models(with_capabilities, self.may_pull)
        data.error = self.public(data.error)
        return data

    def details(self, name: str, digest: str = "") -> Optional[cp.ModelDetails]:
        return self.current.details(name, digest)

    def capabilities(self, name: str) -> Optional[tuple[str, ...]]:
        return self.current.capabilities(name)

    def installed(self, name: str) -> bool:
        return self.current.installed(name)

    def family(self, name: str) -> str:
        return self.current.family(name)

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
            return Note(render.cloud_note(name, caps, data.cloud), installed=True)
        if have is not None:
            caps = data.capabilities.get(have.name)
            if caps is None:
                d = self.details(have.name, have.digest)
                caps = d.capabilities if d else ()
            return Note(render.model_note(name, have, None, caps), installed=True)
        if cp.is_pulling(name, self.host):
            return Note(render.note_html(
                "busy", f"{render.escape(name)} is downloading now (see Downloads); a "
                        f"message sent now waits for it."), downloading=True)
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
        return self.current.fit(name, context_length, probe, trusted_only=self.policy.shared)

    def quants(self, repo: str) -> list[cp.HubQuant]:
        """A Hub repository's quantisations with a fit verdict for this Ollama's machine
        (only the Hub is contacted)."""
        return self.current.quants(repo)

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
        self.current.start_preload(name)

    # -- management actions (all policy-checked) -------------------------------------------

    def delete(self, name: str) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_action("delete", parsed)
        return self.current.delete(parsed)

    def load(self, name: str) -> str:
        return self.current.load(cp.parse_name(name))

    def unload(self, name: str) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_action("unload", parsed)
        return self.current.unload(parsed)

    def cancel(self, name: str) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_action("cancel", parsed)
        return self.current.cancel(parsed)

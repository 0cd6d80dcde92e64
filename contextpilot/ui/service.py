"""What the app's handlers call: the app's rules above one or more Ollama hosts.

``Host`` (``ui/host.py``) is what one Ollama server has, can do and says; ``Hosts``
(``ui/hosts.py``) is the app's hosts, one or a fleet. ``Service`` holds them and applies the
rules above them: every method that takes a model name validates it (``parse_name``) and
applies the ``AccessPolicy`` before anything reaches Ollama, so a crafted request to any event
handler, public or private, gets the same checks as the page; and every text a visitor of a
shared app may see goes through ``public`` (no server address, no server path, no operator's
command). Methods are blocking; handlers run them in a thread.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any, Optional

import contextpilot as cp
from contextpilot import netaddr, settings
from contextpilot._client import redact, resolve_host
from contextpilot.fit import usage
from contextpilot.fit.catalog import catalog_entry
from contextpilot.policy import ACTIONS, AccessPolicy
from contextpilot.ui import render, render_models, render_status
from contextpilot.ui.host import Host, Models, key
from contextpilot.ui.hosts import ALL, Hosts
from contextpilot.ui.serving import current_session, require_login

log = logging.getLogger("contextpilot")

HIDDEN_HOST = "the configured host"
"What a shared app's visitors see instead of the Ollama server's address."

__all__ = ["HIDDEN_HOST", "Host", "Hosts", "Models", "Note", "Service", "key",
           "preload_default"]


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

    def __init__(self, host: Any, policy: AccessPolicy, preload: bool,
                 login_required: bool = False) -> None:
        self._hosts = Hosts.of(host, preload)
        for h in self._hosts.by_name.values():  # the argument wins over the Hosts' own
            h.preload = preload
        self.login_required = login_required
        self.policy = policy

    @property
    def hosts(self) -> Hosts:
        """The app's hosts; every call to Ollama asks for them, so this is where a request
        without the login CONTEXTPILOT_AUTH requires is refused (see serving.require_login)."""
        require_login(self.login_required)
        return self._hosts

    @property
    def current(self) -> Host:
        """The first host (the only one, unless the app has a fleet)."""
        return self.hosts.primary

    @property
    def multi(self) -> bool:
        return self._hosts.multi

    # -- what a visitor may see -------------------------------------------------------------

    def label(self, name: str) -> str:
        """A host's name as this request may see it: on a shared app a host configured by
        its address alone (named by its host:port) is "host 2", by its place."""
        if self.policy.shared and self._hosts.derived(name):
            return f"host {self._hosts.names.index(name) + 1}"
        return name

    def host_choice(self, value: object) -> Optional[str]:
        """A visitor's host choice ("auto", a name or a label as shown): the host's name, or
        None for the router; InvalidRequest for anything else, before any request."""
        if isinstance(value, str):
            shown = {self.label(n).lower(): n for n in self._hosts.names}
            wanted = value.strip().lower()
            if wanted in shown:
                return self._hosts.pick(shown[wanted])
            if self.policy.shared and any(wanted == n.lower() for n in self._hosts.names):
                value = "?"  # an address a shared page never showed: not a choice here
        return self._hosts.pick(value)

    def public(self, text: str, paths: bool = True) -> str:
        """``text`` as a visitor of a shared app may see it: without an Ollama server's
        address (with it they could use Ollama directly, past every rule here) and, unless
        ``paths`` is False (HTML), without the server's paths. Unchanged on a private app."""
        if not text or not self.policy.shared:
            return text
        if self.multi:  # every host's address becomes its name, then its label
            text = self._operators_command(self._hosts.fleet.redact(text))
            for name in sorted(self._hosts.names, key=len, reverse=True):
                if self.label(name) != name:
                    text = text.replace(name, self.label(name))
            text = self._hide_bare_names(text)
        else:
            text = _hide_address(text, resolve_host(self._hosts.primary.url))
        return redact(text) if paths else text

    def _operators_command(self, text: str) -> str:
        """"python -m contextpilot pull X --host gpu1" (a visitor cannot run it; a label is
        no --host) reads "ask the operator to pull X on gpu1"."""
        names = "|".join(re.escape(n) for n in sorted(self._hosts.names, key=len, reverse=True))
        return re.sub(rf"python -m contextpilot pull (\S+) --host ({names})(?![\w:-]|\.\w)",
                      r"ask the operator to pull \1 on \2", text)

    def _hide_bare_names(self, text: str) -> str:
        """A host shown by its label is named by its host:port, so the fleet leaves its bare
        name (a TLS or DNS error says it) where ``_hide_address`` hides one host's: its label."""
        owners: dict[str, list[str]] = {}
        for name in self._hosts.names:
            bare = netaddr.host_of(self._hosts.by_name[name].url)
            if self.label(name) != name and bare and not netaddr.is_loopback(bare):
                owners.setdefault(bare, []).append(self.label(name))
        for bare, labels in owners.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(bare)}(?![\w-]|\.\w)",
                          labels[0] if len(labels) == 1 else "a host", text, flags=re.I)
        return text

    def server_status(self) -> cp.ServerStatus:
        """cp.server_status for this host, its host and error as ``public`` shows them."""
        s = self.current.status()
        if not self.policy.shared:
            return s
        return dataclasses.replace(s, host=HIDDEN_HOST, error=self.public(s.error))

    def status_html(self) -> str:
        """The status line: Ollama's host and version, or what is wrong and how to fix it.
        When nothing answers at a local host, start 'ollama serve' if we can, and say so.
        Several hosts: how many answer, each one's name, version and state in the tooltip."""
        if self.multi:
            return render_status.fleet_status_html(self.host_statuses(), mode=self.mode_html())
        status = self.server_status()
        if status.reachable:
            return render_status.status_html(status, mode=self.mode_html())
        result = self.current.autostart()
        said = self.public(result.message)
        if result.reachable:
            return render_status.status_html(self.server_status(), note=said, mode=self.mode_html())
        return render_status.status_html(status, hint=said, mode=self.mode_html())

    def mode_html(self) -> str:
        """Which mode the app is in for this request: "Private", or "Shared: downloads
        limited to ..." (the allowlist, or the models installed when it is first needed)."""
        if not self.policy.shared:
            return render_status.mode_html(False)
        allowed: Optional[list[str]]
        try:
            allowed = self.policy.allowed_names()
        except cp.ContextPilotError:  # the installed models cannot be listed yet
            allowed = None
        locked = [a for a in ACTIONS if not self.policy.may(a)]
        return render_status.mode_html(True, allowed, locked)

    def host_statuses(self) -> list[cp.HostStatus]:
        """Each host's status as this request may see it (names or labels, no address)."""
        out = []
        for s in self.hosts.statuses():
            shown = dataclasses.replace(s, name=self.label(s.name), error=self.public(s.error),
                                        installed=s.installed, loaded=s.loaded)
            out.append(dataclasses.replace(shown, url="") if self.policy.shared else shown)
        return out

    def models(self, with_capabilities: bool = True) -> Models:
        """The models (merged over the hosts, each with where it is); the picker offers
        only the downloads the policy allows, and an error reads as ``public`` shows it."""
        data = self.hosts.models(with_capabilities, self.may_pull)
        data.error = self.public(data.error)
        if self.policy.shared and self.multi:
            data.installed = [dataclasses.replace(
                m, hosts=tuple(map(self.label, m.hosts)),
                loaded_on=tuple(map(self.label, m.loaded_on))) for m in data.installed]
        return data

    def _host_for(self, name: str) -> Host:
        """The host that has ``name`` (the first in order), else the first host."""
        where = self.hosts.where(name)
        return self.hosts.host(where[0] if where else None)

    def details(self, name: str, digest: str = "") -> Optional[cp.ModelDetails]:
        return self._host_for(name).details(name, digest) if self.may_ask(name) else None

    def capabilities(self, name: str) -> Optional[tuple[str, ...]]:
        return self._host_for(name).capabilities(name) if self.may_ask(name) else None

    def may_ask(self, name: str) -> bool:
        """Whether Ollama may be asked about ``name`` for this request: about a cloud model
        Ollama asks ollama.com, so on a shared app only for one the operator allowed
        (decided from the name and the installed list, see ``AccessPolicy.is_cloud``)."""
        try:
            return self.policy.may_chat(name)
        except cp.ContextPilotError:  # a bad name, or Ollama not answering: do not ask
            return False

    def installed(self, name: str, host: Optional[str] = None) -> bool:
        return self.hosts.installed(name, host)

    def think_facts(self, name: str) -> tuple[Optional[tuple[str, ...]], str]:
        """``name``'s capabilities (as ``capabilities``) and family, from the one host that
        has it (found once: on a fleet that is a look at every host)."""
        host = self._host_for(name)
        return (host.capabilities(name) if self.may_ask(name) else None), host.family(name)

    def note(self, model: Optional[str], data: Optional[Models] = None,
             host: object = None) -> str:
        """The line under the picker (HTML): see ``note_state``."""
        return self.note_state(model, data, host=host).html

    def note_state(self, model: Optional[str], data: Optional[Models] = None,
                   refused: bool = False, host: object = None) -> Note:
        """Installed, downloading, or not installed with the fit verdict (once) for the host
        it would download to (``host``: chosen, else the router's pick); whether "Download
        anyway" applies. ``refused``: a download just waited for it."""
        if not model:
            return Note("")
        try:
            name = cp.parse_name(model).display
            choice = self.host_choice(host)
        except (cp.InvalidModelName, cp.InvalidRequest) as exc:  # it lists the hosts' names
            return Note(render.note_html("warn", render.escape(self.public(str(exc)))))
        data = data or self.models(with_capabilities=False)
        if data.error:
            return Note("")
        have = data.find(name)
        if cp.parse_name(name).is_cloud or (have is not None and have.is_cloud):
            # runs on ollama.com (by its name, or as Ollama lists it): never downloaded
            caps = data.capabilities.get(have.name) if have is not None else None
            return Note(render.cloud_note(name, caps, data.cloud), installed=True)
        if have is not None and choice is not None and have.hosts and (
                self.label(choice) not in have.hosts):
            have = None  # not on the host chosen: it downloads there
        if have is not None:
            caps = data.capabilities.get(have.name)
            if caps is None:
                d = self.details(have.name, have.digest)
                caps = d.capabilities if d else ()
            return Note(render.model_note(name, have, None, caps), installed=True)
        if self.hosts.pulling(name):
            return Note(render.note_html(
                "busy", f"{render.escape(name)} is downloading now (see Downloads); a "
                        f"message sent now waits for it."), downloading=True)
        if not self.may_pull(name):
            return Note(render.note_html(
                "stop", f"{render.escape(name)} is not installed, and downloads of it are "
                        f"not allowed on this shared app."))
        try:
            verdict = self.public_verdict(self.fit(name, host=choice))
        except cp.ContextPilotError as exc:  # no host answers to download it to
            return Note(render.note_html("warn", render.escape(self.public(str(exc)))))
        # On a shared app the override is the operator's: visitors are not offered it.
        return Note(render.model_note(name, None, catalog_entry(name))
                    + render_models.fit_line(verdict, refused),
                    needs_override=render_models.needs_override(verdict)
                    and not self.policy.shared)

    def public_verdict(self, v: cp.FitVerdict) -> cp.FitVerdict:
        """The verdict with its sentences as ``public`` shows them, before they are made
        into HTML (paths taken out of markup would take the markup with them)."""
        if not self.policy.shared:
            return v
        return dataclasses.replace(v, message=self.public(v.message),
                                   notes=tuple(self.public(n) for n in v.notes))

    def fit(self, name: str, context_length: Optional[int] = None,
            probe: bool = True, host: Optional[str] = None) -> cp.FitVerdict:
        """The fit verdict for the host ``name`` would download to (chosen, or the router's
        pick); on a shared app only the default registry and the Hub are asked (never a
        host a visitor named), without the operator's Hugging Face token."""
        shared = self.policy.shared
        target = self.hosts.target(name, host, current_session()[0])
        return target.fit(name, context_length, probe, trusted_only=shared,
                          token=self.hub_token(shared))

    def quants(self, repo: str) -> list[cp.HubQuant]:
        """A Hub repository's quantisations, each with its fit here (only the Hub is asked)."""
        return self.current.quants(repo, token=self.hub_token())

    def search(self, text: str) -> list[cp.HubModel]:
        """The Hub's GGUF repositories for ``text``."""
        return cp.search_models(text, token=self.hub_token())

    def hub_token(self, shared: Optional[bool] = None) -> Optional[bool]:
        """The Hugging Face token this request's Hub calls send: the operator's own (None,
        huggingface_hub's) on a private app, none (False) for a visitor's."""
        return False if (self.policy.shared if shared is None else shared) else None

    def may_pull(self, name: str) -> bool:
        """Whether the policy lets visitors download ``name`` (False when it cannot tell)."""
        try:
            return self.policy.may_pull(name)
        except cp.ContextPilotError:  # the allowlist needs Ollama, which is down
            return False

    def before_pull(self, name: str, override: bool, host: Optional[str] = None,
                    every: bool = False) -> str:
        """Policy (raises NotAllowed), then the fit check: '' to go, else why it waits.
        On a shared app the override is the operator's: a visitor cannot fill their disk.
        ``every``: a download to every host waits when it waits for any of them."""
        if every and self.multi:
            said = [self.before_pull(name, override, n) for n in self.hosts.names]
            return " ".join(f"{self.label(n)}: {r}" for n, r in zip(self.hosts.names, said)
                            if r)
        self.policy.check_pull(name)
        if self.installed(name, host) or cp.parse_name(name).is_cloud:  # runs on ollama.com
            return ""
        if override and not self.policy.shared:
            return ""
        # No probe here: the pull starts now anyway, and stops at its first layer when the
        # disk is too small; the note under the dropdown probed (and cached) already.
        verdict = self.fit(name, probe=False, host=host)
        refusal = render_models.fit_refusal(verdict)
        if refusal and self.policy.shared:
            return self.public(
                f"{verdict.message} Not downloading {verdict.model}: on this shared app "
                f"only the operator can download a model that may not fit.")
        return refusal

    def record_use(self, name: str) -> None:
        """Remember when this app last chatted with ``name`` (for make-room advice)."""
        usage.record_use(name)

    def start_preload(self, name: str, hosts: tuple[str, ...] = ()) -> None:
        """Load ``name`` in the background on ``hosts`` (none: the first), to answer quickly."""
        for host in hosts or (None,):
            self.hosts.host(host).start_preload(name)

    # -- management actions (all policy-checked) -------------------------------------------

    def delete(self, name: str, host: object = ALL) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_action("delete", parsed)
        done = self.hosts.delete(parsed, self._targets(host))
        return f"Deleted {parsed.display}{self._on(done)}."

    def load(self, name: str, host: object = None) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_chat(parsed)  # loading a cloud model runs it on ollama.com
        choice = self.host_choice(host)
        where = self.hosts.load(parsed, choice)
        return f"{parsed.display} is loaded in memory{self._on([where] if where else [])}."

    def unload(self, name: str, host: object = None) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_action("unload", parsed)
        done = self.hosts.unload(parsed, self.host_choice(host))
        return f"{parsed.display} was unloaded from memory{self._on(done)}."

    def cancel(self, name: str, host: object = ALL) -> str:
        parsed = cp.parse_name(name)
        self.policy.check_action("cancel", parsed)
        if self.hosts.cancel(parsed, self._targets(host)):
            return f"Cancelled the download of {parsed.display}; starting it again resumes it."
        return f"{parsed.display} is not downloading."

    def _targets(self, host: object) -> str:
        """"all", or one host's name, from a visitor's choice."""
        if isinstance(host, str) and host.strip().lower() == ALL:
            return ALL
        return self.host_choice(host) or ALL

    def _on(self, names: list[str]) -> str:
        return f" on {', '.join(map(self.label, names))}" if self.multi and names else ""


def _hide_address(text: str, url: str) -> str:
    """``text`` without ``url``, with or without its scheme, nor its bare host name."""
    for form in sorted({url, url.split("://", 1)[-1]}, key=len, reverse=True):
        text = text.replace(form, HIDDEN_HOST)
    name = netaddr.host_of(url)
    if name:  # alone too: a TLS error names the host its certificate is not valid for
        text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)", HIDDEN_HOST, text,
                      flags=re.I)
    return text

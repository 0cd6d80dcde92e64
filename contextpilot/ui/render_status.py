"""Pure rendering of the status chip at the top of the page: which Ollama answers (one host:
its version and address; several: how many answer, each in the tooltip), or what is wrong
and how to fix it, and the app's mode (private, or shared and what visitors may download).
Host names only where several hosts are shown: the caller gives them as the request may see
them (``Service.label``)."""

from __future__ import annotations

from typing import Optional, Sequence

from ..errors import INSTALL_URL
from ..types import HostStatus, ServerStatus
from .render import escape, short_name


MODE_NAMES_SHOWN = 3
"How many allowed models the shared chip names before '+N more' (all are in its title)."


def mode_html(shared: bool, allowed: Optional[Sequence[str]] = None,
              locked: Sequence[str] = ()) -> str:
    """The chip that says which mode the app is in. ``allowed``: the models visitors may
    download (names; None: not known yet); ``locked``: the operator's actions ("delete",
    "unload", "cancel").

    >>> mode_html(True, ["llama3.2", "qwen3:0.6b"], ["delete"])  # doctest: +ELLIPSIS
    '<span ... title="...">Shared: downloads limited to llama3.2, qwen3:0.6b</span>'
    """
    if not shared:
        return ('<span class="cp-chip" data-mode="private" title="Only this machine reaches '
                'this app: downloads, delete, unload and cancel are all allowed.">'
                'Private</span>')
    names = [short_name(n) for n in allowed or ()]
    if allowed is None:  # not known yet (the installed models, and Ollama is not there)
        text, title = "Shared", "Visitors may download only the allowed models."
    elif names:
        shown = ", ".join(names[:MODE_NAMES_SHOWN]) + (
            f" +{len(names) - MODE_NAMES_SHOWN} more" if len(names) > MODE_NAMES_SHOWN else "")
        text = f"Shared: downloads limited to {shown}"
        title = f"Visitors may download only: {', '.join(names)}."
    else:
        text, title = "Shared: no downloads", "Visitors may not download models."
    if locked:
        title += f" {_and(locked).capitalize()} are the operator's."
    return (f'<span class="cp-chip" data-mode="shared" title="{escape(title)}">'
            f'{escape(text)}</span>')


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def status_html(s: ServerStatus, note: str = "", hint: str = "", mode: str = "") -> str:
    """The status chip: Ollama's version and host, cloud, the app's ``mode`` (``mode_html``);
    when Ollama is not there, what is wrong, the fix (``hint``) and where to get Ollama."""
    if s.reachable:
        host = s.host.split("://", 1)[-1]
        version = f" {escape(s.version)}" if s.version else ""
        cloud_chip = {
            True: '<span class="cp-chip" data-cloud="yes" title="cloud models available">'
                  '☁ cloud</span>',
            False: '<span class="cp-chip" data-cloud="no" title="cloud models switched off">'
                   'cloud off</span>', None: ""}[s.cloud]
        extra = f'<span class="cp-status-note">{escape(note)}</span>' if note else ""
        return (f'<div class="cp-status" data-state="ok"><span class="cp-dot" '
                f'aria-hidden="true"></span><span class="cp-status-text">Ollama{version} · '
                f'{escape(host)}</span>{cloud_chip}{mode}{extra}</div>')
    # With a hint (what autostart found and what to do), the error's first sentence says
    # what is wrong and the hint the fix; the error's generic advice would repeat it.
    headline = (s.error.split(". ", 1)[0].rstrip(".") + ".") if hint else s.error
    fix = f'<div class="cp-status-fix">{escape(hint)}</div>' if hint else ""
    return (f'<div class="cp-status" data-state="down" role="alert"><div class="cp-status-line">'
            f'<span class="cp-dot" aria-hidden="true"></span><span class="cp-status-text">'
            f'{escape(headline)}</span></div>{fix}<div class="cp-status-actions">'
            f'<a class="cp-status-link" href="{INSTALL_URL}" target="_blank" '
            f'rel="noopener noreferrer">How to install Ollama</a>{mode}</div></div>')


def host_line(s: HostStatus) -> str:
    """One host in the tooltip: ``gpu1 · Ollama 0.33.0 · up · 2 answering``."""
    if not s.reachable:
        return f"{s.name} · down: {s.error or 'it does not answer'}"
    busy = f" · {s.in_flight} answering" if s.in_flight else ""
    version = f" · Ollama {s.version}" if s.version else ""
    return f"{s.name}{version} · up · {len(s.installed)} models{busy}"


def fleet_status_html(statuses: Sequence[HostStatus], mode: str = "") -> str:
    """The status chip for several hosts: how many answer, each host in the tooltip (and
    in a folded list, for a screen reader and a phone)."""
    up = sum(1 for s in statuses if s.reachable)
    state = "ok" if up == len(statuses) else ("down" if up == 0 else "partial")
    title = escape("\n".join(host_line(s) for s in statuses))
    items = "".join(
        f'<li data-host="{escape(s.name)}" '
        f'data-up="{str(s.reachable).lower()}">{escape(host_line(s))}</li>'
        for s in statuses)
    return (f'<div class="cp-status" data-state="{state}" data-hosts="{len(statuses)}">'
            f'<span class="cp-dot" aria-hidden="true"></span><details class="cp-hosts">'
            f'<summary class="cp-status-text" title="{title}">{len(statuses)} hosts · {up} up'
            f'</summary><ul>{items}</ul></details>{mode}</div>')

"""Pure rendering for model management: the Models table, details, running list, the
downloads panel, capability badges and the fit verdict. No I/O, no gradio; everything from
the server or a model is escaped (see ``render.escape``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence

from ..types import (FitVerdict, ModelDetails, ModelInfo, PullOutcome, PullProgress,
                     RunningModel)
from .render import escape, human_bytes, human_eta, percent, progress_facts, step_words

TABLE_HEADERS = ["Name", "Size", "Parameters", "Quantization", "Modified"]
BADGES = {"vision": "vision", "thinking": "thinking", "tools": "tools", "embedding": "embedding"}


def badges(capabilities: Optional[Iterable[str]]) -> str:
    """``' · vision, thinking'`` for a dropdown label; '' when there is nothing to say."""
    shown = [BADGES[c] for c in capabilities or () if c in BADGES]
    return f" · {', '.join(shown)}" if shown else ""


def when(t: Optional[datetime], now: Optional[datetime] = None) -> str:
    """A modified/expires time in plain words: ``'2024-05-01 13:45'``, ``'in 4m 10s'``."""
    if t is None:
        return ""
    if now is not None:
        seconds = (t - now).total_seconds()
        if seconds > 10 * 365 * 86400:
            return "never (kept loaded)"
        return f"in {human_eta(seconds)}" if seconds > 0 else "now"
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def table_rows(installed: Sequence[ModelInfo]) -> list[list[str]]:
    """Rows of the Models table. Plain text: the Dataframe shows it literally."""
    return [[m.name, human_bytes(m.size), m.parameter_size, m.quantization,
             when(m.modified_at)] for m in installed]


def disk_total(installed: Sequence[ModelInfo]) -> str:
    total = sum(m.size for m in installed)
    count = len(installed)
    return f"{count} model{'s' if count != 1 else ''} installed, {human_bytes(total)} on disk."


def details_html(d: ModelDetails) -> str:
    """The details card of one installed model."""
    rows = [("Family", d.family), ("Parameters", d.parameter_size),
            ("Quantization", d.quantization), ("Format", d.format),
            ("Context length", f"{d.context_length:,}" if d.context_length else ""),
            ("Capabilities", ", ".join(d.capabilities))]
    cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{escape(k)}</th>"
                    f"<td>{escape(v)}</td></tr>" for k, v in rows if v)
    extra = ""
    if d.license:
        extra += f"<div><strong>License</strong><pre>{escape(d.license)}</pre></div>"
    if d.parameters:
        extra += f"<div><strong>Parameters</strong><pre>{escape(d.parameters)}</pre></div>"
    return (f'<div class="cp-details" data-model="{escape(d.name)}"><h4>{escape(d.name)}</h4>'
            f"<table>{cells}</table>{extra}</div>")


def running_html(running: Sequence[RunningModel], now: Optional[datetime] = None) -> str:
    """The "running now" list: memory, VRAM and when each model leaves memory."""
    if not running:
        return '<div class="cp-running" data-count="0">No model is loaded in memory.</div>'
    now = now or datetime.now(timezone.utc)
    items = "".join(
        f'<li data-model="{escape(r.name)}"><strong>{escape(r.name)}</strong> — '
        f"{human_bytes(r.size)} in memory, {human_bytes(r.size_vram)} in VRAM"
        f"{', unloads ' + escape(when(r.expires_at, now)) if r.expires_at else ''}</li>"
        for r in running)
    return f'<div class="cp-running" data-count="{len(running)}"><ul>{items}</ul></div>'


def downloads_html(pulls: Sequence[PullProgress], recent: Sequence[PullOutcome] = (),
                   now: Optional[datetime] = None) -> str:
    """The downloads panel: every running download with its bar, then how the recent ones
    ended (the newest of each model not running now), e.g. "Failed 3 min ago: ..."."""
    running = {p.model for p in pulls}
    ended = _newest_per_model(o for o in recent if o.model not in running)
    rows = "".join(_download_row(p) for p in pulls) if pulls else (
        '<div class="cp-idle">No download is running.</div>')
    if ended:
        now = now or datetime.now(timezone.utc)
        rows += ('<div class="cp-recent" style="margin-top:6px">'
                 + "".join(_outcome_row(o, now) for o in ended) + "</div>")
    return f'<div class="cp-downloads" data-count="{len(pulls)}">{rows}</div>'


OUTCOME_WORDS = {"done": "Done", "failed": "Failed", "cancelled": "Cancelled"}


def _newest_per_model(outcomes: Iterable[PullOutcome]) -> list[PullOutcome]:
    seen: dict[str, PullOutcome] = {}
    for o in outcomes:  # newest first already
        seen.setdefault(o.model, o)
    return list(seen.values())


def ago(then: datetime, now: datetime) -> str:
    """``'just now'``, ``'40 s ago'``, ``'3 min ago'``, ``'2 h ago'``."""
    s = max(0, int((now - then).total_seconds()))
    if s < 10:
        return "just now"
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def _outcome_row(o: PullOutcome, now: datetime) -> str:
    head = f"{OUTCOME_WORDS.get(o.outcome, o.outcome.capitalize())} {ago(o.ended_at, now)}"
    if o.outcome == "done":
        detail = f" · {human_bytes(o.total)}" if o.total else ""
    else:
        where = f" at {human_bytes(o.completed)} of {human_bytes(o.total)}" if o.total else ""
        detail = where + ("; downloading it again resumes it." if o.outcome == "cancelled"
                          else f": {o.message}" if o.message else "")
    return (f'<div class="cp-outcome" data-model="{escape(o.model)}" '
            f'data-outcome="{escape(o.outcome)}" style="font-size:0.9em;margin:2px 0">'
            f"<strong>{escape(o.model)}</strong> — {escape(head + detail)}</div>")


def _download_row(p: PullProgress) -> str:
    pct = percent(p)
    facts = " · ".join(escape(f) for f in progress_facts(p))
    label = f"Downloading {escape(p.model)}"
    width = 0.0 if p.fraction is None else p.fraction * 100
    return (
        f'<div class="cp-download" data-model="{escape(p.model)}" style="margin:4px 0">'
        f'<div style="display:flex;justify-content:space-between;gap:1em">'
        f"<strong>{escape(p.model)}</strong><span>{escape(step_words(p))}</span>"
        f'<span class="cp-pct">{"" if pct is None else f"{pct}%"}</span></div>'
        f'<div role="progressbar" aria-label="{label}" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{pct or 0}" style="height:8px;border-radius:4px;background:#e5e7eb;'
        f'overflow:hidden"><div style="width:{width:.1f}%;height:100%;background:#2563eb">'
        f'</div></div><div style="font-size:0.85em">{facts}</div></div>')


def fit_note(v: FitVerdict) -> str:
    """The fit verdict under the dropdown, before a download (escaped Markdown)."""
    figures = [f"download {human_bytes(v.download_size)}" if v.download_size else "",
               f"free disk {human_bytes(v.free_disk)}" if v.free_disk is not None else "",
               f"memory needed ≈ {human_bytes(v.memory_needed)}" if v.memory_needed else ""]
    shown = " · ".join(f for f in figures if f)
    sign = "⚠️ " if v.fits_disk is False or v.fits_memory is False else ""
    return f"{sign}{escape(v.message)}" + (f" ({shown})" if shown else "")


def fit_refusal(v: FitVerdict) -> str:
    """Why a download waits for the override, or '' when it may start. Plain text."""
    if v.fits_disk is False:
        return (f"{v.message} Not downloading {v.model}: tick “Download anyway” to "
                f"download it regardless.")
    if v.fits_memory is False:
        return (f"{v.message} Tick “Download anyway” to acknowledge this and "
                f"download {v.model}.")
    return ""

"""Pure rendering for model management: the picker's choices, the Models table, details,
running list, the downloads panel, capability chips and the fit verdict. No I/O, no gradio; everything from
the server or a model is escaped (see ``render.escape``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence

from ..fit.catalog import CatalogEntry
from ..types import (FitVerdict, ModelDetails, ModelInfo, PullOutcome, PullProgress,
                     RunningModel)
from ..units import format_duration, format_size
from .render_fleet import where_words
from .render import (CLOUD_OFF, capability_words, chips_html, escape, is_cloud, note_html,
                     percent, progress_bar, progress_facts, purpose, short_name, step_words)

SECTIONS = ("Installed", "Recommended", "Cloud", "Download")
"The picker's groups, in order; each choice label starts with its group's word."


def choice_label(section: str, name: str, size: Optional[int] = None,
                 capabilities: Optional[Iterable[str]] = None,
                 where: Sequence[str] = ()) -> str:
    """``'Installed · llama3.2:latest · 3.0 MB · tools'``: the group, the name, the size
    (a cloud model has none here: it runs on ollama.com), the capabilities and, on several
    hosts, where it is (``render_fleet.where_words``), plain text for the dropdown. A model
    that cannot chat says what it is instead of its capabilities (``purpose``)."""
    parts = [section, name]
    if size and section != "Cloud":
        parts.append(format_size(size))
    not_chat = purpose(capabilities)
    return " · ".join(parts + ([not_chat] if not_chat else capability_words(capabilities))
                      + list(where))


def model_choices(installed: Sequence[ModelInfo], catalog: Sequence[CatalogEntry],
                  installed_keys: set[str], catalog_key,
                  capabilities: Optional[dict] = None, may_pull=None,
                  recommendations: Sequence = (), cloud: Optional[bool] = None
                  ) -> list[tuple[str, str]]:
    """Dropdown ``(label, value)``, grouped by where a model lives: installed, Ollama's
    recommendations for its machine, cloud, then the catalog's downloads (those
    ``may_pull`` allows). The value is the model's name, so /chat's model argument is
    unchanged. ``cloud`` False (switched off on this Ollama): no cloud model is offered,
    and an installed cloud stub says it is switched off."""
    caps = capabilities or {}
    keys = set(installed_keys)
    groups: dict[str, list[tuple[str, str]]] = {s: [] for s in SECTIONS}
    for m in installed:
        section = "Cloud" if m.is_cloud or is_cloud(m.name) else "Installed"
        label = choice_label(section, m.name, m.size, caps.get(m.name), where_words(m))
        groups[section].append((f"{label} · {CLOUD_OFF}" if section == "Cloud"
                                and cloud is False else label, m.name))
    for r in recommendations:  # the server's own picks for its machine
        off = cloud is False and bool(r.required_plan or is_cloud(r.model))
        if catalog_key(r.model) in keys or (may_pull and not may_pull(r.model)) or off:
            continue
        keys.add(catalog_key(r.model))
        groups["Recommended" if not (r.required_plan or is_cloud(r.model)) else "Cloud"].append(
            (recommendation_label(r), r.model))
    for e in catalog:
        off = cloud is False and is_cloud(e.name)
        if catalog_key(e.name) in keys or (may_pull and not may_pull(e.name)) or off:
            continue
        section = "Cloud" if is_cloud(e.name) else "Download"
        groups[section].append((choice_label(section, e.short_name, e.size, e.capabilities),
                                e.name))
    return [c for s in SECTIONS for c in groups[s]]


def recommendation_label(r) -> str:
    """``'Recommended · gpt-oss:20b · needs 14 GB'``; a cloud pick: ``'Cloud · name ·
    recommended by Ollama'``."""
    if r.required_plan or is_cloud(r.model):
        return f"Cloud · {r.model} · recommended by Ollama"
    need = f" · needs {format_size(r.vram_bytes)}" if r.vram_bytes else ""
    return f"Recommended · {r.model}{need}"



TABLE_HEADERS = ["Name", "Size", "Parameters", "Quantization", "Modified"]


def badges(capabilities: Optional[Iterable[str]]) -> str:
    """``' · vision · thinking'`` for a plain-text label; '' when there is nothing to say."""
    shown = capability_words(capabilities)
    return "".join(f" · {c}" for c in shown)


def when(t: Optional[datetime], now: Optional[datetime] = None) -> str:
    """A modified/expires time in plain words: ``'2024-05-01 13:45'``, ``'in 4 min'``."""
    if t is None:
        return ""
    if now is not None:
        seconds = (t - now).total_seconds()
        if seconds > 10 * 365 * 86400:
            return "never (kept loaded)"
        return f"in {format_duration(seconds)}" if seconds > 0 else "now"
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def table_headers(hosts: bool = False) -> list[str]:
    """The Models table's columns; with several hosts, where each model is."""
    return TABLE_HEADERS + (["Hosts"] if hosts else [])


def table_rows(installed: Sequence[ModelInfo], hosts: bool = False) -> list[list[str]]:
    """Rows of the Models table. Plain text: the Dataframe shows it literally."""
    return [[m.name, format_size(m.size), m.parameter_size, m.quantization,
             when(m.modified_at)] + ([hosts_cell(m)] if hosts else []) for m in installed]


def hosts_cell(m: ModelInfo) -> str:
    """``'gpu1, gpu2 (loaded on gpu2)'``."""
    loaded = f" (loaded on {', '.join(m.loaded_on)})" if m.loaded_on else ""
    return ", ".join(m.hosts) + loaded


def disk_total(installed: Sequence[ModelInfo]) -> str:
    total = sum(m.size for m in installed)
    count = len(installed)
    return f"{count} model{'s' if count != 1 else ''} installed, {format_size(total)} on disk."


def details_html(d: ModelDetails) -> str:
    """The details card of one installed model: capability chips, a few facts, and the
    long texts (license, parameters) folded away."""
    facts = [("Family", d.family), ("Parameters", d.parameter_size),
             ("Quantization", d.quantization), ("Format", d.format),
             ("Context length", f"{d.context_length:,} tokens" if d.context_length else "")]
    cells = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts if v)
    folded = "".join(
        f'<details class="cp-more"><summary>{title}</summary><pre>{escape(text)}</pre>'
        f"</details>" for title, text in (("License", d.license), ("Parameters", d.parameters))
        if text)
    chips = chips_html(d.capabilities)
    return (f'<div class="cp-card cp-details" data-model="{escape(d.name)}">'
            f'<div class="cp-details-head"><strong>{escape(d.name)}</strong>'
            f'<span class="cp-chips">{chips}</span></div><dl class="cp-facts-list">{cells}</dl>'
            f"{folded}</div>")


def running_html(running: Sequence[RunningModel], now: Optional[datetime] = None) -> str:
    """The "Running now" card: memory, VRAM and the time left before each model unloads."""
    head = '<div class="cp-card-title">Running now</div>'
    if not running:
        return (f'<div class="cp-card cp-running" data-count="0">{head}'
                f'<div class="cp-quiet">No model is loaded in memory.</div></div>')
    now = now or datetime.now(timezone.utc)
    items = "".join(
        f'<li data-model="{escape(r.name)}" data-host="{escape(r.host)}">'
        f'<strong>{escape(r.name)}</strong>'
        f'<span class="cp-quiet">{" on " + escape(r.host) + ", " if r.host else ""}'
        f'{format_size(r.size)} in memory'
        f"{f', {format_size(r.size_vram)} on the GPU' if r.size_vram else ''}"
        f"{', unloads ' + escape(when(r.expires_at, now)) if r.expires_at else ''}</span></li>"
        for r in running)
    return (f'<div class="cp-card cp-running" data-count="{len(running)}">{head}'
            f"<ul>{items}</ul></div>")


def downloads_html(pulls: Sequence[PullProgress], recent: Sequence[PullOutcome] = (),
                   now: Optional[datetime] = None) -> str:
    """The downloads panel: every running download with its bar, then how the recent ones
    ended (the newest of each model not running now), e.g. "Failed 3 min ago: ..."."""
    running = {(p.model, p.host) for p in pulls}
    ended = _newest_per_model(o for o in recent if (o.model, o.host) not in running)
    rows = "".join(_download_row(p) for p in pulls) if pulls else (
        '<div class="cp-idle cp-quiet">No download is running.</div>')
    if ended:
        now = now or datetime.now(timezone.utc)
        rows += ('<div class="cp-recent">'
                 + "".join(_outcome_row(o, now) for o in ended) + "</div>")
    return f'<div class="cp-downloads" data-count="{len(pulls)}">{rows}</div>'


OUTCOME_WORDS = {"done": "Done", "failed": "Failed", "cancelled": "Cancelled"}


def _newest_per_model(outcomes: Iterable[PullOutcome]) -> list[PullOutcome]:
    seen: dict[tuple[str, str], PullOutcome] = {}
    for o in outcomes:  # newest first already
        seen.setdefault((o.model, o.host), o)
    return list(seen.values())


def ago(then: datetime, now: datetime) -> str:
    """``'just now'``, ``'40 s ago'``, ``'3 min ago'``, ``'2 h ago'`` (``format_duration``)."""
    s = max(0.0, (now - then).total_seconds())
    return "just now" if s < 10 else f"{format_duration(s)} ago"


def _outcome_row(o: PullOutcome, now: datetime) -> str:
    head = f"{OUTCOME_WORDS.get(o.outcome, o.outcome.capitalize())} {ago(o.ended_at, now)}"
    on = f" on {o.host}" if o.host else ""  # several hosts: the UI passes each one's name
    if o.outcome == "done":
        detail = f" · {format_size(o.total)}" if o.total else ""
    else:
        where = f" at {format_size(o.completed)} of {format_size(o.total)}" if o.total else ""
        detail = where + ("; downloading it again resumes it." if o.outcome == "cancelled"
                          else f": {o.message}" if o.message else "")
    return (f'<div class="cp-outcome" data-model="{escape(o.model)}" '
            f'data-outcome="{escape(o.outcome)}">'
            f"<strong>{escape(o.model)}</strong>{escape(on)} — {escape(head + detail)}</div>")


def _download_row(p: PullProgress) -> str:
    pct = percent(p)
    facts = " · ".join(escape(f) for f in [step_words(p), *progress_facts(p)])
    where = f" on {p.host}" if p.host else ""
    label = f"Downloading {escape(short_name(p.model) + where)}"
    return (f'<div class="cp-download" data-model="{escape(p.model)}" '
            f'data-host="{escape(p.host)}"><div class="cp-pull-head">'
            f'<strong>{escape(p.model)}</strong>{escape(where)}'
            f'<span class="cp-pct">{"" if pct is None else f"{pct}%"}</span></div>'
            f'{progress_bar(p, label)}<div class="cp-facts">{facts}</div></div>')


SOURCES = {"catalog": "size from the catalog", "registry": "size from the registry",
           "hub": "size from Hugging Face", "probe": "size from a probe",
           "installed": "size of the installed copy"}


def needs_override(v: FitVerdict) -> bool:
    """Whether a download waits for "Download anyway" (the model may not fit)."""
    return v.fits_disk is False or v.fits_memory is False


def fit_line(v: FitVerdict, refused: bool = False) -> str:
    """The fit verdict, once, as one line with an icon (HTML), where the size came from in
    quiet text. ``refused``: a download was just asked for without the override, so the
    line says what to tick."""
    kind = ("stop" if v.fits_disk is False else "warn" if v.fits_memory is False
            else "fits" if v.fits_disk and v.fits_memory else "info")
    text = escape(v.message)
    source = SOURCES.get(v.size_source, "") if v.download_size else ""
    if source:
        text += f' <span class="cp-quiet">({source})</span>'
    if refused and needs_override(v):
        text += " <strong>Tick “Download anyway” to download it regardless.</strong>"
    return note_html(kind, text, role="alert" if refused else "status")


def fit_refusal(v: FitVerdict) -> str:
    """Why a download waits for the override, or '' when it may start. Plain text."""
    if v.fits_disk is False:
        return (f"{v.message} Not downloading {v.model}: tick “Download anyway” to "
                f"download it regardless.")
    if v.fits_memory is False:
        return (f"{v.message} Tick “Download anyway” to acknowledge this and "
                f"download {v.model}.")
    return ""

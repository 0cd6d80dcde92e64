"""The downloads panel: every pull running in this process (any tab, any user, a chat's
auto-pull), refreshed by a timer, with a Cancel control, and under them how the downloads of
the last hour ended ("Failed 3 min ago: ...").

It reads ``active_pulls()`` and ``recent_pulls()`` — the process's registry of shared pulls
and their outcomes — not anything the page started, so a reopened page shows a download still
running, or why it failed while the page was closed (the Download button's pulls are
detached: closing the page does not stop them).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Optional

import gradio as gr
from gradio.context import Context

import contextpilot as cp
from contextpilot.ui import render, render_models
from contextpilot.ui.service import Service

TICK = 0.5  # seconds between refreshes of the panel while a download runs
IDLE_TICK = 5.0
"""Seconds between looks while nothing runs (a download another page starts shows within
it; one this page starts shows at once); a look that finds nothing new sends nothing."""


def build_downloads(service: Service, private: dict,
                    started: Optional[gr.HTML] = None) -> None:
    """Render the panel where it is called (inside a Blocks) and wire its events. With
    ``started`` (the Download button's progress area), a download started in this page is
    listed as soon as it runs, not at the next tick."""
    # Folded while nothing runs; it opens (and counts) when a download starts, or on a page
    # load that finds one failed, and stays as the user leaves it once the last one ends
    # (so "Cancelled…" can still be read).
    with gr.Accordion("Downloads", open=False, elem_id="downloads") as box:
        panel = gr.HTML(render_models.downloads_html([]), elem_id="downloads-panel")
        with gr.Row(equal_height=True, visible=False) as controls:  # shown while any runs
            which = gr.Dropdown(choices=[], value=None, label="Running download",
                                show_label=False, container=False,
                                allow_custom_value=True,  # checked by Service, not here
                                elem_id="downloads-select", scale=4)
            cancel = gr.Button("Cancel download", elem_id="cancel-download", scale=0,
                               min_width=150, variant="stop", size="sm")
        result = gr.Markdown(elem_id="downloads-status")
    seen = gr.State({})  # what this page shows: {"names": [...], "html": "..."}
    timer = gr.Timer(IDLE_TICK)
    nothing = (gr.skip(),) * 6

    def running() -> list[cp.PullProgress]:
        """The running pulls, their hosts as this page may see them."""
        return [render.on_host(p, service.label) for p in service.hosts.active_pulls()]

    def ended() -> list[cp.PullOutcome]:
        """How the recent pulls ended; on several hosts each names its host as this page
        may see it (one host: no host, its address is operator configuration)."""
        multi = service.multi
        return [dataclasses.replace(o, host=service.label(o.host) if multi else "")
                for o in service.hosts.recent_pulls()]

    def update(current: Optional[str], last: dict, on_load: bool = False):
        last = last if isinstance(last, dict) else {}
        pulls, recent = running(), ended()
        html = service.public(render_models.downloads_html(pulls, recent),
                              paths=False)  # a failed pull's reason may name the host
        names = [[_row_label(p), _row_value(p)] for p in pulls]
        shown = {"names": names, "html": html}
        if names == last.get("names") and not on_load:  # no re-render when nothing changed
            return nothing if html == last.get("html") else (
                html, gr.skip(), gr.skip(), gr.skip(), shown, gr.skip())
        values = [v for _, v in names]
        value = current if current in values else (values[0] if values else None)
        label = f"Downloads · {len(names)} running" if names else "Downloads"
        opens = bool(set(values) - {v for _, v in last.get("names") or ()}) or (
            on_load and any(o.outcome == "failed" for o in recent))
        choices = [(label_, value_) for label_, value_ in names]
        return (html, gr.Dropdown(choices=choices, value=value), gr.Row(visible=bool(names)),
                gr.Accordion(label=label, open=True) if opens else gr.Accordion(label=label),
                shown, gr.Timer(TICK if names else IDLE_TICK))

    def tick(current: Optional[str], last: dict):
        return update(current, last)

    def on_load(current: Optional[str], last: dict):
        return update(current, last, on_load=True)

    def on_started(current: Optional[str], last: dict):
        # The Download button's progress changed: a pull started in this page shows now,
        # not at the next tick; otherwise nothing to send.
        names = [[_row_label(p), _row_value(p)] for p in running()]
        if isinstance(last, dict) and names == last.get("names"):
            return nothing
        return tick(current, last)

    async def cancel_download(name: Optional[str]) -> str:
        if not name or not isinstance(name, str):  # the control sends its text, or nothing
            return "Choose a running download to cancel."
        model, _, host = name.rpartition("@") if "@" in name else (name, "", "all")
        try:
            return render.escape(await asyncio.to_thread(service.cancel, model, host))
        except cp.ContextPilotError as exc:
            return f"⚠️ {render.escape(service.public(str(exc)))}"

    events = dict(show_progress="hidden", concurrency_limit=None, **private)
    outputs = [panel, which, controls, box, seen, timer]
    timer.tick(tick, [which, seen], outputs, api_name="downloads_panel", **events)
    # As the page loads, not at the first tick (private: a callable value would be public).
    if Context.root_block is not None:
        Context.root_block.load(on_load, [which, seen], outputs, **events)
    if started is not None:
        started.change(on_started, [which, seen], outputs, **events)
    cancel.click(cancel_download, [which], [result], api_name="cancel_download", **private)


def _row_label(p: cp.PullProgress) -> str:
    return f"{p.model} on {p.host}" if p.host else p.model


def _row_value(p: cp.PullProgress) -> str:
    """What the Cancel control sends: the model, and its host on several hosts."""
    return f"{p.model}@{p.host}" if p.host else p.model

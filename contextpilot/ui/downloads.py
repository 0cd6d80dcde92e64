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
from typing import Optional

import gradio as gr
from gradio.context import Context

import contextpilot as cp
from contextpilot.ui import render, render_models
from contextpilot.ui.service import Service

TICK = 0.5  # seconds between refreshes of the panel


def build_downloads(service: Service, private: dict,
                    started: Optional[gr.HTML] = None) -> None:
    """Render the panel where it is called (inside a Blocks) and wire its events. With
    ``started`` (the Download button's progress area), a download started in this page is
    listed as soon as it runs, not at the next tick."""
    with gr.Accordion("Downloads", open=True, elem_id="downloads"):
        panel = gr.HTML(render_models.downloads_html([]), elem_id="downloads-panel")
        with gr.Row(equal_height=True, visible=False) as controls:  # shown while any runs
            which = gr.Dropdown(choices=[], value=None, label="Running download",
                            allow_custom_value=True,  # checked by Service, not here
                                elem_id="downloads-select", scale=4)
            cancel = gr.Button("Cancel download", elem_id="cancel-download", scale=0,
                               min_width=160, variant="stop")
        result = gr.Markdown(elem_id="downloads-status")
    seen = gr.State([])
    timer = gr.Timer(TICK)

    def tick(current: Optional[str], last: list):
        pulls = cp.active_pulls(service.host)
        html = service.public(render_models.downloads_html(pulls, cp.recent_pulls(
            service.host)), paths=False)  # a failed pull's reason may name the host
        names = [p.model for p in pulls]
        if names == last:
            return html, gr.skip(), gr.skip(), last
        value = current if current in names else (names[0] if names else None)
        return html, gr.Dropdown(choices=names, value=value), gr.Row(visible=bool(names)), names

    def on_started(current: Optional[str], last: list):
        # The Download button's progress changed: a pull started in this page shows now,
        # not at the next tick; otherwise nothing to send.
        if [p.model for p in cp.active_pulls(service.host)] == last:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return tick(current, last)

    async def cancel_download(name: Optional[str]) -> str:
        if not name:
            return "Choose a running download to cancel."
        try:
            return render.escape(await asyncio.to_thread(service.cancel, name))
        except cp.ContextPilotError as exc:
            return f"⚠️ {render.escape(service.public(str(exc)))}"

    events = dict(show_progress="hidden", concurrency_limit=None, **private)
    timer.tick(tick, [which, seen], [panel, which, controls, seen], api_name="downloads_panel",
               **events)
    # As the page loads, not at the first tick (private: a callable value would be public).
    if Context.root_block is not None:
        Context.root_block.load(tick, [which, seen], [panel, which, controls, seen], **events)
    if started is not None:
        started.change(on_started, [which, seen], [panel, which, controls, seen], **events)
    cancel.click(cancel_download, [which], [result], api_name="cancel_download", **private)


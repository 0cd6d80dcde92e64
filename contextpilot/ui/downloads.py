"""The downloads panel: every pull running in this process (any tab, any user, a chat's
auto-pull), refreshed by a timer, with a Cancel control.

It reads ``active_pulls()`` — the process's registry of shared pulls — not anything the
page started, so a reopened page shows a download still running (the Download button's
pulls are detached: closing the page does not stop them).
"""

from __future__ import annotations

import asyncio
from typing import Optional

import gradio as gr

import contextpilot as cp
from contextpilot.ui import render, render_models
from contextpilot.ui.service import Service

TICK = 0.5  # seconds between refreshes of the panel


def build_downloads(service: Service, private: dict) -> None:
    """Render the panel where it is called (inside a Blocks) and wire its events."""
    # Closed while nothing runs; it opens (and counts) when a download starts, and stays as
    # the user leaves it after the last one ends, so "Cancelled…" can still be read.
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
    seen = gr.State([])
    timer = gr.Timer(TICK)

    def tick(current: Optional[str], last: list):
        pulls = cp.active_pulls(service.host)
        names = [p.model for p in pulls]
        if names == last:
            return render_models.downloads_html(pulls), gr.skip(), gr.skip(), gr.skip(), last
        value = current if current in names else (names[0] if names else None)
        started = bool(set(names) - set(last))
        label = f"Downloads · {len(names)} running" if names else "Downloads"
        return (render_models.downloads_html(pulls),
                gr.Dropdown(choices=names, value=value), gr.Row(visible=bool(names)),
                gr.Accordion(label=label, open=True) if started else gr.Accordion(label=label),
                names)

    async def cancel_download(name: Optional[str]) -> str:
        if not name:
            return "Choose a running download to cancel."
        try:
            return render.escape(await asyncio.to_thread(service.cancel, name))
        except cp.ContextPilotError as exc:
            return f"⚠️ {render.escape(str(exc))}"

    events = dict(show_progress="hidden", concurrency_limit=None, **private)
    timer.tick(tick, [which, seen], [panel, which, controls, box, seen],
               api_name="downloads_panel",
               **events)
    cancel.click(cancel_download, [which], [result], api_name="cancel_download", **private)

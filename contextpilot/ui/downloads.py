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
        names = [p.model for p in pulls]
        if names == last:
            return render_models.downloads_html(pulls), gr.skip(), gr.skip(), last
        value = current if current in names else (names[0] if names else None)
        return (render_models.downloads_html(pulls),
                gr.Dropdown(choices=names, value=value), gr.Row(visible=bool(names)), names)

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
    cancel.click(cancel_download, [which], [result], api_name="cancel_download", **private)

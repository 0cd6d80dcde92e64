"""Make room: when a model does not fit on the disk, offer to remove the installed models
the fit verdict names (least recently used and largest first), with the same two-step
confirmation as the Models tab. Deleting is an operator action: on a shared app the policy
decides (CONTEXTPILOT_ALLOW_DELETE), and Service checks it again for every name."""

from __future__ import annotations

import asyncio
from typing import Optional

import gradio as gr

import contextpilot as cp
from contextpilot.ui import render
from contextpilot.ui.service import Service


def build_make_room(service: Service, model: gr.Dropdown, note: gr.Markdown,
                    private: dict) -> None:
    """The Make room… button and its confirmation, under the model note."""
    with gr.Row():
        offer = gr.Button("Make room…", elem_id="make-room", visible=False, variant="stop",
                          size="sm", scale=0, min_width=140)
        confirm = gr.Button("Confirm removal", elem_id="confirm-make-room", visible=False,
                            variant="stop", size="sm", scale=0, min_width=160)
    status = gr.Markdown(elem_id="make-room-status")

    def candidates(name: Optional[str]) -> tuple[str, ...]:
        if not name or not service.policy.may("delete"):
            return ()
        try:
            if service.installed(name) or not service.may_pull(name):
                return ()
            return service.fit(name, probe=False).make_room
        except cp.ContextPilotError:
            return ()

    def check(name: Optional[str]):
        room = candidates(name)
        return gr.Button(visible=bool(room)), gr.Button(visible=False), ""

    def ask(name: Optional[str]):
        room = candidates(name)
        if not room:
            return gr.Button(visible=False), "Nothing needs removing for this model."
        listed = ", ".join(render.escape(m) for m in room)
        return (gr.Button(visible=True),
                f"Remove {listed} to make room for {render.escape(name or '')}? Click "
                f"**Confirm removal** to delete them.")

    async def remove(name: Optional[str]):
        room = await asyncio.to_thread(candidates, name)
        done = []
        try:
            for m in room:
                await asyncio.to_thread(service.delete, m)
                done.append(m)
        except cp.ContextPilotError as exc:  # no Ollama address nor path for a visitor
            said = f"⚠️ {render.escape(service.public(str(exc)))}"
        else:
            said = (f"Deleted {', '.join(render.escape(m) for m in done)}."
                    if done else "Nothing was removed.")
        data = await asyncio.to_thread(service.models, False)
        return (gr.Button(visible=False), gr.Button(visible=False), said,
                gr.Dropdown(choices=data.choices()),
                await asyncio.to_thread(service.note, name, data))

    note.change(check, [model], [offer, confirm, status], show_progress="hidden", **private)
    offer.click(ask, [model], [confirm, status], api_name="ask_make_room", **private)
    confirm.click(remove, [model], [offer, confirm, status, model, note],
                  api_name="make_room", **private)

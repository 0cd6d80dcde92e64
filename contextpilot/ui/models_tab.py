"""The Models tab: installed models with details, Delete (with a confirmation step), Load,
Unload, a live "running now" list and the disk they use. Every change also refreshes the
chat's model dropdown. Handlers go through ``Service``, which validates names and applies
the shared-app policy, so a crafted request gets the same refusals as the buttons."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

import gradio as gr

import contextpilot as cp
from contextpilot.ui import render, render_models
from contextpilot.ui.service import Service

RUNNING_TICK = 2.0  # seconds between refreshes of the running list while the tab is shown


def _message(text: str) -> str:
    return render.escape(text)


def _refusal(text: str) -> str:
    return f"⚠️ {render.escape(text)}"


def build_models_tab(service: Service, chat_model: gr.Dropdown, private: dict):
    """Render the tab's contents where it is called; returns (refresh function, outputs,
    running-list timer) so the caller can wire tab selection and page load."""
    table = gr.Dataframe(headers=render_models.TABLE_HEADERS, value=[], interactive=False,
                         elem_id="models-table", label="Installed models")
    disk = gr.Markdown(elem_id="models-disk")
    with gr.Row(equal_height=True):
        selected = gr.Dropdown(choices=[], value=None, label="Selected model", scale=3,
                               allow_custom_value=True,  # checked by Service, not here
                               elem_id="models-select")
        load = gr.Button("Load", elem_id="load-button", scale=0, min_width=90)
        unload = gr.Button("Unload", elem_id="unload-button", scale=0, min_width=90)
        delete = gr.Button("Delete…", elem_id="delete-button", scale=0, min_width=90,
                           variant="stop")
        confirm = gr.Button("Confirm delete", elem_id="confirm-delete-button", scale=0,
                            min_width=140, variant="stop", visible=False)
    status = gr.Markdown(elem_id="models-status")
    with gr.Row():
        details = gr.HTML(elem_id="model-details")
        running = gr.HTML(render_models.running_html([]), elem_id="running-models")
    timer = gr.Timer(RUNNING_TICK, active=False)

    def refresh(current: Optional[str]):
        data = service.models()
        names = data.names()
        value = current if current in names else (names[0] if names else None)
        return (render_models.table_rows(data.installed),
                render.escape(data.error) if data.error else render_models.disk_total(
                    data.installed),
                gr.Dropdown(choices=names, value=value), gr.Dropdown(choices=data.choices()),
                _details(value), _running())

    outputs = [table, disk, selected, chat_model, details, running]

    def _details(name: Optional[str]) -> str:
        if not name:
            return ""
        d = service.details(name)
        return render_models.details_html(d) if d else ""

    def _running() -> str:
        try:
            return render_models.running_html(cp.running_models(service.host))
        except cp.ContextPilotError as exc:
            return render.error_html(service.public(str(exc)))

    def pick(evt: gr.SelectData):
        row = evt.row_value or []
        if not row:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (gr.Dropdown(value=row[0]), *show_details(row[0]))

    def show_details(name: Optional[str]):
        return _details(name), gr.Button(visible=False), ""

    def ask_delete(name: Optional[str]):
        if not name:
            return gr.Button(visible=False), "Choose a model to delete."
        try:
            service.policy.check_action("delete", name)
        except (cp.NotAllowed, cp.InvalidModelName) as exc:
            return gr.Button(visible=False), _refusal(service.public(str(exc)))
        return (gr.Button(visible=True),
                f"Delete {render.escape(name)}? Click **Confirm delete** to remove it.")

    async def confirm_delete(name: Optional[str]):
        hidden = gr.Button(visible=False)
        try:
            said = _message(await asyncio.to_thread(service.delete, name or ""))
        except cp.ContextPilotError as exc:
            return (hidden, _refusal(service.public(str(exc))), *([gr.skip()] * len(outputs)))
        return (hidden, said, *(await asyncio.to_thread(refresh, None)))

    def action(do: Callable[[str], str]):
        async def run(name: Optional[str]):
            try:
                said = _message(await asyncio.to_thread(do, name or ""))
            except cp.ContextPilotError as exc:
                said = _refusal(service.public(str(exc)))
            return said, await asyncio.to_thread(_running)
        return run

    table.select(pick, None, [selected, details, confirm, status], **private)
    selected.input(show_details, [selected], [details, confirm, status], **private)
    delete.click(ask_delete, [selected], [confirm, status], api_name="ask_delete", **private)
    confirm.click(confirm_delete, [selected], [confirm, status, *outputs],
                  api_name="delete_model", **private)
    load.click(action(service.load), [selected], [status, running], api_name="load_model",
               **private)
    unload.click(action(service.unload), [selected], [status, running],
                 api_name="unload_model", **private)
    timer.tick(_running, None, [running], show_progress="hidden", **private)
    return refresh, selected, outputs, timer

"""The Models tab: installed models with details, Delete (with a confirmation step), Load,
Unload, a live "running now" list and the disk they use. Every change also refreshes the
chat's model dropdown. Handlers go through ``Service``, which validates names and applies
the shared-app policy, so a crafted request gets the same refusals as the buttons."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import OrderedDict
from typing import Callable, Optional

import gradio as gr

import contextpilot as cp
from contextpilot.ui import render, render_models
from contextpilot.ui.service import Service
from contextpilot.ui.serving import page_session

RUNNING_TICK = 2.0  # seconds between refreshes of the running list while the tab is shown


def _message(text: str) -> str:
    return render.escape(text)


def _refusal(text: str) -> str:
    return f"⚠️ {render.escape(text)}"


class Questions:
    """What each session's Delete… asked about, so that Confirm deletes that and nothing
    else: a pick is its own event, which can land after a Confirm clicked for the model
    picked before it. The newest ``limit`` sessions are remembered; a call from no page (no
    session) is not.

    >>> q = Questions(limit=1); q.ask("s1", ("a", "all")); q.ask("s2", ("b", "all"))
    >>> q.take("s1"), q.take("s2"), q.take("s2")
    (None, ('b', 'all'), None)
    >>> q.ask("", ("a", "all")); q.take("")
    """

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._asked: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def ask(self, session: str, what: tuple[str, str]) -> None:
        if not session:
            return
        with self._lock:
            self._asked.pop(session, None)
            self._asked[session] = what
            while len(self._asked) > self.limit:
                self._asked.popitem(last=False)

    def take(self, session: str) -> Optional[tuple[str, str]]:
        with self._lock:
            return self._asked.pop(session, None)


def build_models_tab(service: Service, chat_model: gr.Dropdown, private: dict):
    """Render the tab's contents where it is called; returns (refresh function, outputs,
    running-list timer) so the caller can wire tab selection and page load."""
    disk = gr.Markdown(elem_id="models-disk")
    several = service.multi
    table = gr.Dataframe(headers=render_models.table_headers(several), value=[],
                         interactive=False,
                         elem_id="models-table", show_label=False, max_height=360,
                         buttons=[])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=260):
            # The row's actions: pick a row (or a name here), then act on it.
            with gr.Row(elem_id="models-actions"):
                selected = gr.Dropdown(choices=[], value=None, label="Selected model",
                                       scale=3, min_width=180,
                                       allow_custom_value=True,  # checked by Service
                                       elem_id="models-select")
                load = gr.Button("Load", elem_id="load-button", scale=0, min_width=70,
                                 size="sm")
                unload = gr.Button("Unload", elem_id="unload-button", scale=0, min_width=70,
                                   size="sm")
                delete = gr.Button("Delete…", elem_id="delete-button", scale=0, min_width=80,
                                   size="sm")
                confirm = gr.Button("Confirm delete", elem_id="confirm-delete-button",
                                    scale=0, min_width=130, variant="stop", size="sm",
                                    visible=False)
            # On several hosts: act on every host that has it, or on one (checked by Service)
            where = gr.Dropdown(choices=[("All hosts", "all")], value="all",
                                label="On host", elem_id="models-host", visible=several,
                                allow_custom_value=True, min_width=160)
            status = gr.Markdown(elem_id="models-status")
            details = gr.HTML(elem_id="model-details", padding=False, container=False)
        with gr.Column(scale=2, min_width=220):
            running = gr.HTML(render_models.running_html([]), elem_id="running-models",
                              padding=False, container=False)
    timer = gr.Timer(RUNNING_TICK, active=False)

    def refresh(current: Optional[str]):
        data = service.models()
        names = data.names()
        value = current if current in names else (names[0] if names else None)
        return (render_models.table_rows(data.installed, several),
                render.escape(data.error) if data.error else render_models.disk_total(
                    data.installed),
                gr.Dropdown(choices=names, value=value), gr.Dropdown(choices=data.choices()),
                _details(value), _running(), *([_hosts_choice()] if several else []))

    outputs = [table, disk, selected, chat_model, details, running, *([where] if several else [])]
    on_host = [where] if several else []  # one host: the events take what they always took

    def _hosts_choice():
        shown = [service.label(n) for n in service.hosts.names]
        return gr.Dropdown(choices=[("All hosts", "all")] + [(n, n) for n in shown])

    def _details(name: Optional[str]) -> str:
        if not name:
            return ""
        d = service.details(name)
        return render_models.details_html(d) if d else ""

    def _running() -> str:
        try:
            return render_models.running_html([
                dataclasses.replace(r, host=service.label(r.host)) if r.host else r
                for r in service.hosts.running()])
        except cp.ContextPilotError as exc:
            return render.error_html(service.public(str(exc)))

    def pick(evt: gr.SelectData):
        row = evt.row_value or []
        if not row:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (gr.Dropdown(value=row[0]), *show_details(row[0]))

    def show_details(name: Optional[str]):
        return _details(name), gr.Button(visible=False), ""

    questions = Questions()

    def ask_delete(name: Optional[str], host: str = "all",
                   request: Optional[gr.Request] = None):
        if not name:
            return gr.Button(visible=False), "Choose a model to delete."
        try:
            service.policy.check_action("delete", name)
            chosen = None if not several or host == "all" else service.host_choice(host)
            on = f" on {service.label(chosen)}" if chosen else ""
        except (cp.NotAllowed, cp.InvalidModelName, cp.InvalidRequest) as exc:
            return gr.Button(visible=False), _refusal(service.public(str(exc)))
        questions.ask(page_session(request), (name, host))
        return (gr.Button(visible=True), f"Delete {render.escape(name)}{render.escape(on)}? "
                                         f"Click **Confirm delete** to remove it.")

    async def confirm_delete(name: Optional[str], host: str = "all",
                             request: Optional[gr.Request] = None):
        hidden = gr.Button(visible=False)
        asked = questions.take(page_session(request))
        if asked is not None and asked != (name, host):
            # a call without a question first (the API) is checked by Service alone; what is
            # picked now is not named: it may be anything a crafted call sent
            return (hidden, _refusal(
                f"Nothing was deleted: Delete… asked about {asked[0]}, but another model is "
                f"picked now. Click Delete… again to delete it."),
                *([gr.skip()] * len(outputs)))
        try:
            said = _message(await asyncio.to_thread(service.delete, name or "", host))
        except cp.ContextPilotError as exc:
            return (hidden, _refusal(service.public(str(exc))), *([gr.skip()] * len(outputs)))
        return (hidden, said, *(await asyncio.to_thread(refresh, None)))

    def action(do: Callable[[str, str], str]):
        async def run(name: Optional[str], host: str = "all"):
            try:
                said = _message(await asyncio.to_thread(do, name or "", _one(host)))
            except cp.ContextPilotError as exc:
                said = _refusal(service.public(str(exc)))
            return said, await asyncio.to_thread(_running)
        return run

    table.select(pick, None, [selected, details, confirm, status], **private)
    selected.input(show_details, [selected], [details, confirm, status], **private)
    delete.click(ask_delete, [selected, *on_host], [confirm, status], api_name="ask_delete",
                 **private)
    confirm.click(confirm_delete, [selected, *on_host], [confirm, status, *outputs],
                  api_name="delete_model", **private)
    load.click(action(service.load), [selected, *on_host], [status, running],
               api_name="load_model", **private)
    unload.click(action(service.unload), [selected, *on_host], [status, running],
                 api_name="unload_model", **private)
    timer.tick(_running, None, [running], show_progress="hidden", **private)
    return refresh, selected, outputs, timer


def _one(host: str) -> str:
    """Load and unload take one host, or "auto" (load: where a chat would go; unload:
    wherever it is loaded): "all" means the latter."""
    return "auto" if not isinstance(host, str) or host.strip().lower() == "all" else host

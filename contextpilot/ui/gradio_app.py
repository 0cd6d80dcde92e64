"""The Gradio app: a ChatInterface with a model dropdown, auto-pull with live progress, and
a small public API (/chat, /list_models, /pull_model) for gradio_client users.

Handlers are thin: they call ``contextpilot`` (never ollama/httpx), go through the async
bridge (so Stop and a closed tab close the stream to Ollama), and render with ``render``.
Every library error becomes a message where the user is looking; nothing raw reaches Gradio.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from pathlib import Path
from typing import Any, AsyncIterator, Optional

import gradio as gr

import contextpilot as cp
from contextpilot.catalog import catalog, catalog_entry
from contextpilot.ui import render
from contextpilot.ui.bridge import batches, keep_pull_updates

log = logging.getLogger("contextpilot")

# Chat and pulls wait on Ollama, not on this process: each runs in its own bridge thread and
# Ollama queues generation itself (OLLAMA_NUM_PARALLEL), so Gradio's default of 1 per event
# would make one user's long answer or download block everyone else. 16 at once keeps
# threads and sockets bounded on a shared app. Cheap events (status, lists) use the queue
# default of 8, enough that a slow Ollama answer to one /api/tags never stalls a page load.
STREAM_CONCURRENCY = 16
DEFAULT_CONCURRENCY = 8
PULL_INTERVAL = 0.1  # ≤ 10 updates/s while bytes flow: each costs Gradio ~1 ms of CPU
TOKEN_INTERVAL = 0.05  # coalesce tokens to ~20 updates/s

DEFAULT_OPTIONS = {"system": "", "temperature": 0.7, "num_ctx": 4096}


# ----------------------------------------------------------------------------- model data


class _Models:
    """The installed list and catalog for one host, as the dropdown and /list_models see it."""

    def __init__(self, host: Optional[str]) -> None:
        self.host = host
        self.installed: list[cp.ModelInfo] = []
        self.error = ""

    def refresh(self) -> "_Models":
        try:
            self.installed, self.error = cp.list_models(self.host), ""
        except cp.ContextPilotError as exc:
            self.installed, self.error = [], str(exc)
        return self

    def keys(self) -> set[str]:
        return {_key(m.name) for m in self.installed}

    def find(self, name: str) -> Optional[cp.ModelInfo]:
        key = _key(name)
        return next((m for m in self.installed if _key(m.name) == key), None)

    def choices(self) -> list[tuple[str, str]]:
        return render.model_choices(self.installed, catalog(), self.keys(), _key)

    def default(self, configured: str) -> str:
        if configured:
            return configured
        chat_models = [m.name for m in self.installed if "embed" not in m.name]
        return chat_models[0] if chat_models else catalog()[0].name

    def as_json(self, status: cp.ServerStatus) -> dict:
        keys = self.keys()
        return {
            "host": status.host,
            "version": status.version,
            "error": self.error,
            "installed": [_info_json(m) for m in self.installed],
            "catalog": [_entry_json(e, _key(e.name) in keys) for e in catalog()],
        }


def _key(name: str) -> str:
    try:
        return cp.parse_name(name).key
    except cp.InvalidModelName:
        return name


def _info_json(m: cp.ModelInfo) -> dict:
    return {"name": m.name, "size": m.size, "size_text": render.human_bytes(m.size),
            "family": m.family, "parameter_size": m.parameter_size,
            "quantization": m.quantization,
            "modified_at": m.modified_at.isoformat() if m.modified_at else None}


def _entry_json(e, installed: bool) -> dict:
    return {"name": e.name, "size": e.size, "size_text": render.human_bytes(e.size),
            "memory": e.memory, "parameters": e.parameters,
            "capabilities": list(e.capabilities), "description": e.description,
            "installed": installed}


# ----------------------------------------------------------------------------- chat helpers


def _split_message(message: Any) -> tuple[str, list[str]]:
    """ChatInterface(multimodal=True) sends {"text": ..., "files": [...]}; accept a str too."""
    if isinstance(message, dict):
        files = [f.get("path", "") if isinstance(f, dict) else str(f)
                 for f in message.get("files") or []]
        return str(message.get("text") or ""), [f for f in files if f]
    return str(message or ""), []


def _history_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(_history_text(c) for c in content)
    if isinstance(content, dict) and content.get("type") == "text":
        return str(content.get("text", ""))
    return ""  # files and components of earlier turns are not sent again


def _ollama_history(history: list) -> list[dict]:
    """Chat history -> Ollama messages: user turns and plain answers; status, thinking and
    error messages (they carry metadata, or start with the warning sign) are display only."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant") or (m.get("metadata") or {}).get("title"):
            continue
        text = html.unescape(_history_text(m.get("content")))
        if text and not (role == "assistant" and text.startswith("⚠️")):
            out.append({"role": role, "content": text})
    return out


def _vision_refusal(name: str, host: Optional[str]) -> str:
    """A note when images are attached for a model that cannot see them ('' when fine)."""
    caps: Optional[tuple] = None
    try:
        if cp.model_exists(name, host):
            caps = cp.model_details(name, host).capabilities
        else:
            entry = catalog_entry(name)
            caps = entry.capabilities if entry else None
    except cp.ContextPilotError:
        caps = None  # unknown: the chat itself will report what is wrong
    if caps is None or "vision" in caps:
        return ""
    return (f"{name} cannot read images (it has no vision capability), so your message was "
            f"not sent. Remove the image, or choose a vision model such as gemma3 or llava.")


def _images(files: list[str]) -> list[bytes]:
    return [Path(f).read_bytes() for f in files]


def _interval(event: object) -> float:
    return PULL_INTERVAL if isinstance(event, cp.PullProgress) else TOKEN_INTERVAL


# ----------------------------------------------------------------------------- the app


def build_app(host: Optional[str] = None, default_model: Optional[str] = None) -> gr.Blocks:
    """Build the app for the Ollama at ``host`` (None: OLLAMA_HOST, else localhost).

    Nothing here talks to Ollama: the model list and status are filled on page load.
    """
    configured = default_model or os.environ.get("CONTEXTPILOT_DEFAULT_MODEL", "").strip()

    def refresh_models(current: Optional[str]):
        data = _Models(host).refresh()
        value = current or data.default(configured)
        status = render.status_html(cp.server_status(host))
        return (gr.Dropdown(choices=data.choices(), value=value), status,
                _note(value, data))

    def _note(model: Optional[str], data: Optional[_Models] = None) -> str:
        if not model:
            return ""
        try:
            name = cp.parse_name(model).display
        except cp.InvalidModelName as exc:
            return f"⚠️ {render.escape(str(exc))}"
        data = data or _Models(host).refresh()
        if data.error:
            return ""
        return render.model_note(name, data.find(name), catalog_entry(name))

    async def chat(message: Any, history: list, model: str = configured,
                   system: str = "", temperature: float = 0.7, num_ctx: float = 4096):
        """Answer ``message`` with ``model``, downloading the model first if needed.

        Yields the assistant's messages (download status, thinking, answer) and, for the page,
        the progress bar, the dropdown and the status line."""
        skip = gr.skip()
        text, files = _split_message(message)
        view = render.ChatView(model or "")
        try:
            name = await _resolve_model(model)
            view.model = name
            if files:
                refusal = await asyncio.to_thread(_vision_refusal, name, host)
                if refusal:
                    view.error = refusal
                    yield view.messages(), skip, skip, skip, skip
                    return
            user: dict = {"role": "user", "content": text}
            if files:
                user["images"] = await asyncio.to_thread(_images, files)
            messages = _ollama_history(history) + [user]
            options = {"temperature": float(temperature), "num_ctx": int(num_ctx)}
            yield view.messages(), skip, skip, skip, skip  # at once: the turn has started

            def make(token):
                return cp.chat_stream(name, messages, system=system or None, options=options,
                                      host=host, cancel=token)

            async for batch in batches(make, _interval):
                pulled_now = any(isinstance(e, cp.PullProgress) for e in batch)
                view.feed(batch)
                bar = render.progress_html(view.pull) if pulled_now else skip
                yield view.messages(), bar, skip, skip, skip
        except cp.ContextPilotError as exc:
            view.error = str(exc)
        except Exception as exc:  # never a raw traceback in the page
            log.exception("chat failed")
            view.error = f"Something went wrong: {exc}"
        yield (view.messages(), *(await asyncio.to_thread(_after_turn, view)))

    async def _resolve_model(model: Optional[str]) -> str:
        model = (model or "").strip()
        if not model:
            model = (await asyncio.to_thread(_Models(host).refresh)).default(configured)
        return cp.parse_name(model).display  # InvalidModelName: shown as the answer

    def _after_turn(view: render.ChatView):
        """After each message: the bar's last state, the dropdown and note (a pull installs
        a model), and the status line (Ollama may have gone or come back)."""
        status = render.status_html(cp.server_status(host))
        if view.pull is None:
            return gr.skip(), gr.skip(), gr.skip(), status
        bar = (render.progress_html(view.pull) if view.pull.done or not view.error
               else render.error_html(view.error))
        data = _Models(host).refresh()
        return bar, gr.Dropdown(choices=data.choices()), _note(view.model, data), status

    async def download(model: str):
        """The Download button: the bar, then the dropdown, note and status."""
        skip = gr.skip()
        last: Optional[cp.PullProgress] = None
        try:
            name = cp.parse_name((model or "").strip()).display
            yield render.progress_html(cp.PullProgress(model=name, status="pulling manifest")), \
                skip, skip, skip
            async for batch in batches(lambda t: cp.pull_model(name, host, cancel=t),
                                       PULL_INTERVAL):
                last = batch[-1]
                yield render.progress_html(last), skip, skip, skip
        except cp.ContextPilotError as exc:
            yield render.error_html(str(exc)), skip, skip, skip
        except Exception as exc:
            log.exception("download failed")
            yield render.error_html(f"Something went wrong: {exc}"), skip, skip, skip
        dropdown, status, note = await asyncio.to_thread(refresh_models, model)
        yield skip, dropdown, note, status

    async def pull_model_api(name: str) -> AsyncIterator[str]:
        """Download a model; streams one progress line at a time and ends with the result."""
        last: Optional[cp.PullProgress] = None
        try:
            display = cp.parse_name((name or "").strip()).display
            async for batch in batches(lambda t: cp.pull_model(display, host, cancel=t),
                                       PULL_INTERVAL):
                for value in keep_pull_updates(batch):
                    last = value
                    yield render.progress_text(value)
            yield render.pull_result_text(last, display)
        except cp.ContextPilotError as exc:
            yield str(exc)
        except Exception as exc:
            log.exception("pull failed")
            yield f"Something went wrong: {exc}"

    def list_models_api() -> dict:
        """Installed models and the catalog of popular models (with download sizes)."""
        status = cp.server_status(host)
        return _Models(host).refresh().as_json(status)

    def model_changed(model: str) -> str:
        return _note(model)

    with gr.Blocks(title="ContextPilot", fill_height=True) as demo:
        gr.Markdown("## ContextPilot — chat with local Ollama models")
        with gr.Row(equal_height=True):
            status = gr.HTML("Checking Ollama…", elem_id="ollama-status")
            refresh = gr.Button("↻ Refresh", elem_id="refresh-models", size="sm", scale=0)
        with gr.Row():
            # No Ollama call at build time: the catalog until the page loads, then the
            # installed models first (refresh_models on demo.load).
            model = gr.Dropdown(
                choices=render.model_choices([], catalog(), set(), _key),
                value=configured, allow_custom_value=True, label="Model",
                info="Installed models first; others are downloaded when you use them. "
                     "You can type any tag, e.g. qwen3:0.6b or hf.co/user/repo:Q4_K_M.",
                elem_id="model-dropdown", scale=4)
            pull_button = gr.Button("Download", elem_id="pull-button", scale=0, min_width=140)
        note = gr.Markdown(elem_id="model-note")
        pull_status = gr.HTML("", elem_id="pull-status")
        system = gr.Textbox(label="System prompt", value="", lines=2, render=False)
        temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature",
                                render=False)
        num_ctx = gr.Slider(512, 131072, value=4096, step=512, label="Context length (num_ctx)",
                            render=False)
        gr.ChatInterface(
            chat,
            multimodal=True,
            chatbot=gr.Chatbot(elem_id="chatbot", height=460, sanitize_html=True),
            textbox=gr.MultimodalTextbox(file_types=["image"], file_count="multiple",
                                         placeholder="Message…", show_label=False,
                                         elem_id="chat-input", sources=["upload"]),
            additional_inputs=[model, system, temperature, num_ctx],
            additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
            additional_outputs=[pull_status, model, note, status],
            api_name="chat",
            concurrency_limit=STREAM_CONCURRENCY,
            save_history=True,
            fill_height=True,
        )
        gr.api(list_models_api, api_name="list_models")
        gr.api(pull_model_api, api_name="pull_model", concurrency_limit=STREAM_CONCURRENCY)

        private = dict(api_visibility="private")
        demo.load(refresh_models, [model], [model, status, note], **private)
        refresh.click(refresh_models, [model], [model, status, note], **private)
        model.input(model_changed, [model], [note], **private)
        pull_button.click(download, [model], [pull_status, model, note, status],
                          concurrency_limit=STREAM_CONCURRENCY, **private)
    demo.queue(default_concurrency_limit=DEFAULT_CONCURRENCY)
    return demo

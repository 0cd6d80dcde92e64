"""The Gradio app: a Chat tab (ChatInterface with a model dropdown, auto-pull with live
progress, a downloads panel) and a Models tab, plus a small public API (/chat,
/list_models, /pull_model) for gradio_client users.

Handlers live in ``chat_handlers``, ``models_tab`` and ``downloads``; all of them go
through ``Service``, which validates model names and applies the ``AccessPolicy``, so the
page, the API and a crafted request to the queue get the same checks. The Ollama host is
this function's argument (operator configuration), never an input of any event.
"""

from __future__ import annotations

import inspect
import os
from typing import Optional

import gradio as gr

from contextpilot.catalog import catalog
from contextpilot.policy import AccessPolicy
from contextpilot.ui import render
from contextpilot.ui.chat_handlers import ChatHandlers
from contextpilot.ui.downloads import build_downloads
from contextpilot.ui.find_tab import build_find_tab
from contextpilot.ui.make_room import build_make_room
from contextpilot.ui.models_tab import build_models_tab
from contextpilot.ui.serving import current_visit
from contextpilot.ui.service import Service, key, preload_default

# Chat and pulls wait on Ollama, not on this process: each runs in its own bridge thread and
# Ollama queues generation itself (OLLAMA_NUM_PARALLEL), so Gradio's default of 1 per event
# would make one user's long answer or download block everyone else. 16 at once keeps
# threads and sockets bounded on a shared app. Cheap events (status, lists) use the queue
# default of 8, enough that a slow Ollama answer to one /api/tags never stalls a page load.
STREAM_CONCURRENCY = 16
DEFAULT_CONCURRENCY = 8

DEFAULT_OPTIONS = {"system": "", "temperature": 0.7, "num_ctx": 4096}


def build_app(host: Optional[str] = None, default_model: Optional[str] = None,
              policy: Optional[AccessPolicy] = None, preload: Optional[bool] = None
              ) -> gr.Blocks:
    """Build the app for the Ollama at ``host`` (None: OLLAMA_HOST, else localhost).

    ``policy``: the shared-app rules (default: from the environment); whatever it says,
    every request is judged again from how it arrived (``serving.current_visit``), so a
    launch or mount by other code cannot give visitors the operator's rights. ``preload``: load a model into memory after
    its download (default: CONTEXTPILOT_PRELOAD, on). Nothing here talks to Ollama: the
    model list and status are filled on page load.
    """
    configured = default_model or os.environ.get("CONTEXTPILOT_DEFAULT_MODEL", "").strip()
    policy = policy or AccessPolicy.from_env(host=host)
    if policy.visit is None:  # every request is judged again: see contextpilot.policy
        policy.visit = current_visit
    service = Service(host, policy, preload_default() if preload is None else preload,
                      login_required=bool(os.environ.get("CONTEXTPILOT_AUTH", "").strip()))
    h = ChatHandlers(service, configured)
    private = dict(api_visibility="private")

    with App(title="ContextPilot", fill_height=True) as demo:
        gr.Markdown("## ContextPilot — chat with local Ollama models")
        with gr.Row(equal_height=True):
            status = gr.HTML("Checking Ollama…", elem_id="ollama-status")
            refresh = gr.Button("↻ Refresh", elem_id="refresh-models", size="sm", scale=0)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat") as chat_tab:
                model, think, think_level, override, note, pull_status, pull_button = _chat_tab(
                    h, configured, status)
                build_downloads(service, private, started=pull_status)
            with gr.Tab("Models", id="models") as models_tab:
                refresh_tab, selected, tab_outputs, running_timer = build_models_tab(
                    service, model, private)
            with gr.Tab("Find models", id="find"):
                build_find_tab(service, model, note, tabs, private)
        gr.api(h.list_models_api, api_name="list_models")
        gr.api(h.pull_model_api, api_name="pull_model", concurrency_limit=STREAM_CONCURRENCY)

        page = [model, status, note, think, think_level]
        demo.load(h.refresh_models, [model], page, api_name="refresh_models", **private)
        refresh.click(h.refresh_models, [model], page, **private)
        model.input(h.model_changed, [model], [note, think, think_level], **private)
        pull_button.click(h.download, [model, override], [pull_status, model, note, status],
                          api_name="download", concurrency_limit=STREAM_CONCURRENCY, **private)
        models_tab.select(refresh_tab, [selected], tab_outputs, **private).then(
            lambda: gr.Timer(active=True), None, [running_timer], **private)
        chat_tab.select(lambda: gr.Timer(active=False), None, [running_timer], **private)
    demo.queue(default_concurrency_limit=DEFAULT_CONCURRENCY)
    return demo


def _chat_tab(h: ChatHandlers, configured: str, status: gr.HTML):
    with gr.Row():
        # No Ollama call at build time: the catalog until the page loads, then the
        # installed models first (refresh_models on demo.load).
        model = gr.Dropdown(
            choices=render.model_choices([], catalog(), set(), key),
            value=configured, allow_custom_value=True, label="Model",
            info="Installed models first; others are downloaded when you use them. "
                 "You can type any tag, e.g. qwen3:0.6b or hf.co/user/repo:Q4_K_M.",
            elem_id="model-dropdown", scale=4)
        pull_button = gr.Button("Download", elem_id="pull-button", scale=0, min_width=140)
    with gr.Row():
        think = gr.Checkbox(True, label="Think", elem_id="think-toggle", visible=False,
                            info="Let a thinking model reason before it answers.")
        think_level = gr.Dropdown(["low", "medium", "high"], value="medium", label="Think",
                                  elem_id="think-level", visible=False, scale=0, min_width=160,
                                  info="How hard the model reasons before it answers.")
        override = gr.Checkbox(False, label="Download anyway", elem_id="fit-override",
                               info="Download even if the model may not fit this machine.")
    note = gr.Markdown(elem_id="model-note")
    build_make_room(h.service, model, note, dict(api_visibility="private"))
    pull_status = gr.HTML("", elem_id="pull-status")
    system = gr.Textbox(label="System prompt", value="", lines=2, render=False)
    temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature", render=False)
    num_ctx = gr.Slider(512, 131072, value=4096, step=512, label="Context length (num_ctx)",
                        render=False)
    gr.ChatInterface(
        h.chat,
        multimodal=True,
        chatbot=gr.Chatbot(elem_id="chatbot", height=460, sanitize_html=True),
        textbox=gr.MultimodalTextbox(file_types=["image"], file_count="multiple",
                                     placeholder="Message…", show_label=False,
                                     elem_id="chat-input", sources=["upload"]),
        additional_inputs=[model, system, temperature, num_ctx, think, override, think_level],
        additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
        additional_outputs=[pull_status, model, note, status],
        api_name="chat",
        concurrency_limit=STREAM_CONCURRENCY,
        save_history=True,
        fill_height=True,
    )
    return model, think, think_level, override, note, pull_status, pull_button


MAX_UPLOAD = "20mb"
"The largest file a visitor may attach (images for vision models); launch() defaults to it."


class App(gr.Blocks):
    """The app's Blocks: ``launch()`` defaults ``auth`` to CONTEXTPILOT_AUTH and
    ``max_file_size`` to MAX_UPLOAD, whoever calls it (app.py, the CLI, a notebook, a
    script), so the operator's login holds on every launch path.

    ``has_launched`` is set from the start: Gradio checks that a file in a request was
    uploaded (or, for outputs, is in an allowed place) only once it is True, which launch()
    does but ``gr.mount_gradio_app`` never does, so a mounted app copied any server path a
    request named into its cache and served it back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.has_launched = True

    # Gradio shows the text of any exception to the visitor when show_error is on, which
    # Blocks() and mount_gradio_app() turn on by default; those texts name server paths
    # (e.g. the working directory in a refused file's path). Our handlers answer with their
    # own messages, so only gr.Error texts (always shown) remain; details go to the log.
    @property
    def show_error(self) -> bool:
        return False

    @show_error.setter
    def show_error(self, value: bool) -> None:
        pass

    def launch(self, *args, **kwargs):
        bound = inspect.signature(gr.Blocks.launch).bind(self, *args, **kwargs)
        given = bound.arguments
        if given.get("auth") is None and given.get("auth_dependency") is None:
            given["auth"] = auth_from_env()
        if given.get("max_file_size") is None:
            given["max_file_size"] = MAX_UPLOAD
        return super().launch(*bound.args[1:], **bound.kwargs)


def auth_from_env() -> Optional[tuple[str, str]]:
    """CONTEXTPILOT_AUTH="user:pass" -> ("user", "pass") for ``launch(auth=...)``; else None.

    >>> import os; os.environ["CONTEXTPILOT_AUTH"] = "ada:s3:cret"; auth_from_env()
    ('ada', 's3:cret')
    >>> del os.environ["CONTEXTPILOT_AUTH"]; auth_from_env() is None
    True
    """
    user, sep, password = os.environ.get("CONTEXTPILOT_AUTH", "").partition(":")
    return (user, password) if sep and user else None

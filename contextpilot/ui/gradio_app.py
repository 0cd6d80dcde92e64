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
import warnings
from typing import Optional

import gradio as gr

from contextpilot import settings
from contextpilot.fit.catalog import catalog
from contextpilot.policy import MAX_FILE_BYTES, AccessPolicy
from contextpilot.ui import connections, gate, render, render_models, theme
from contextpilot.ui.chat_handlers import ChatHandlers
from contextpilot.ui.chat_interface import Chat, wire
from contextpilot.ui.safe_chatbot import SafeChatbot
from contextpilot.ui.downloads import build_downloads
from contextpilot.ui.find_tab import build_find_tab
from contextpilot.ui.line import AnswerLine
from contextpilot.ui.make_room import build_make_room
from contextpilot.ui.models_tab import build_models_tab
from contextpilot.ui.serving import current_visit
from contextpilot.ui.hosts import Hosts
from contextpilot.ui.service import Service, key, preload_default
from contextpilot.ui.visitors import Quota

# Chat and pulls wait on Ollama, not on this process: each runs in its own bridge thread and
# Ollama queues generation itself (OLLAMA_NUM_PARALLEL), so Gradio's default of 1 per event
# would make one user's long answer or download block everyone else. 16 at once keeps
# threads and sockets bounded on a shared app. Cheap events (status, lists) use the queue
# default of 8, enough that a slow Ollama answer to one /api/tags never stalls a page load.
STREAM_CONCURRENCY = 16
DEFAULT_CONCURRENCY = 8
LINE_SIZE = 48
"""Chats beyond STREAM_CONCURRENCY wait inside the app (``ui.line``), told their place, the
message kept in the chat; past LINE_PATIENCE seconds they say the app is busy, to send again."""
LINE_PATIENCE = 120.0
VISITOR_ANSWERS = 3
"""Chats one page (a Gradio session) may have waiting or streaming on a shared app; past it
the chat says "You already have 3 answers running..." (``ui.visitors``)."""
ADDRESS_ANSWERS = 8
"""The same for one address (API callers that make a new session for every call): half the
answer slots. Behind a proxy, uvicorn's FORWARDED_ALLOW_IPS decides whose address it is."""
QUEUE_SIZE = 64
"""Events waiting in Gradio's queue beyond those running (the bound behind the line, for a
flood); past it Gradio answers "This application is currently busy. Please try again." (HTTP
503), instead of a queue that grows without bound on a public page."""
STATE_SESSIONS = 1000
"""Sessions whose state (the saved conversations a page sent, its chat) Gradio keeps in
memory, oldest dropped first: Gradio's 10,000 let one visitor's fresh sessions, each with
megabytes of saved conversations, hold gigabytes."""
DELETE_CACHE = (3600, 6 * 3600)
"Every hour, uploads older than six hours are deleted (and all of them at a restart)."

DEFAULT_OPTIONS = {"system": "", "temperature": 0.7, "num_ctx": 4096}


def build_app(host: Optional[str] = None, default_model: Optional[str] = None,
              policy: Optional[AccessPolicy] = None, preload: Optional[bool] = None
              ) -> gr.Blocks:
    """Build the app for the Ollama at ``host`` (None: OLLAMA_HOSTS, else OLLAMA_HOST, else
    localhost; or a ``cp.Fleet`` of several hosts).

    ``policy``: the shared-app rules. By default (and for any policy built with
    ``shared=None``) shared or private is decided when the app is served, for every request
    from how it arrived (``serving.current_visit``: a share link, a bind beyond loopback, a
    Space, a hosted notebook, a proxy...), so however other code launches or mounts the app,
    visitors never get the operator's rights; when it cannot tell, it is shared. A policy
    built with ``shared=True`` or ``shared=False`` is the operator's explicit choice and wins.
    ``preload``: load a model into memory after its download (default: CONTEXTPILOT_PRELOAD,
    on). Nothing here talks to Ollama: the model list and status are filled on page load.
    """
    settings.check()  # a bad CONTEXTPILOT_* value: SettingError here, with what to set
    configured = default_model or settings.text("CONTEXTPILOT_DEFAULT_MODEL")
    hosts = Hosts.of(host)  # one Ollama, or several (OLLAMA_HOSTS, or a cp.Fleet given)
    policy = policy or AccessPolicy.from_env(host=hosts.primary.url)
    if policy.host is None:  # its implicit allowlist is this app's Ollama's models
        policy.host = hosts.primary.url
    if hosts.multi and policy.installed is None:  # ... on any of its hosts
        policy.installed = hosts.fleet.list_models
    if not policy.explicit and policy.visit is None:  # judged per request: see policy
        policy.visit = current_visit
    service = Service(hosts, policy, preload_default() if preload is None else preload,
                      login_required=settings.auth() is not None)
    h = ChatHandlers(service, configured, AnswerLine(STREAM_CONCURRENCY, LINE_PATIENCE),
                     Quota(VISITOR_ANSWERS, ADDRESS_ANSWERS))
    private = dict(api_visibility="private")

    demo = _themed_blocks()
    with gate.app_made_once(demo):  # Gradio would make its server app 6 times here
        with demo:
            with gr.Row(elem_id="cp-header", equal_height=True):
                gr.HTML(BRAND, elem_id="cp-brand", scale=0, min_width=150, padding=False,
                        container=False)
                status = gr.HTML(render.note_html("busy", "Checking Ollama…"),
                                 elem_id="ollama-status", scale=4, padding=False, container=False)
                refresh = gr.Button("↻ Refresh", elem_id="refresh-models", size="sm", scale=0,
                                    min_width=96, variant="secondary")
            with gr.Tabs(elem_id="cp-tabs") as tabs:
                with gr.Tab("Chat", id="chat") as chat_tab:
                    model, think, think_level, override, note, pull_status, pull_button, host, \
                        every_host = _chat_tab(h, configured, status)
                    build_downloads(service, private, started=pull_status)
                with gr.Tab("Models", id="models") as models_tab:
                    refresh_tab, selected, tab_outputs, running_timer = build_models_tab(
                        service, model, private)
                with gr.Tab("Find models", id="find"):
                    build_find_tab(service, model, note, tabs, private)
            gr.api(h.list_models_api, api_name="list_models")
            gr.api(h.pull_model_api, api_name="pull_model", concurrency_limit=STREAM_CONCURRENCY)

            # One host: the events take what they always took; several: the host too.
            chosen = [host] if service.multi else []
            page = [model, status, note, think, think_level, *chosen]
            quiet = dict(show_progress="hidden", **private)  # these lines change in place
            demo.load(h.refresh_models, [model, *chosen], page, api_name="refresh_models",
                      **quiet)
            refresh.click(h.refresh_models, [model, *chosen], page, **quiet)
            for changed in (model.input, host.input) if service.multi else (model.input,):
                changed(h.model_changed, [model, *chosen], [note, think, think_level, override],
                        **quiet)
            note.change(h.controls, [model, *chosen],
                        [override, pull_button, *([every_host] if service.multi else [])], **quiet)
            pull_button.click(h.download, [model, override, *chosen,
                                           *([every_host] if service.multi else [])],
                              [pull_status, model, note, status], api_name="download",
                              concurrency_limit=STREAM_CONCURRENCY,
                              show_progress="hidden", **private)  # the card is the progress
            models_tab.select(refresh_tab, [selected], tab_outputs, **private).then(
                lambda: gr.Timer(active=True), None, [running_timer], **private)
            chat_tab.select(lambda: gr.Timer(active=False), None, [running_timer], **private)
        demo.queue(default_concurrency_limit=DEFAULT_CONCURRENCY, max_size=QUEUE_SIZE)
    _no_server_paths(demo)
    return demo


def _no_server_paths(demo: gr.Blocks) -> None:
    """An icon Gradio serves from its own package (ChatInterface's "New chat" button) puts
    a server path (the virtualenv's) in the page and its /config: it is left out."""
    for block in demo.blocks.values():
        icon = getattr(block, "icon", None)
        if isinstance(icon, dict) and not str(icon.get("path") or "").startswith(
                ("http://", "https://")):
            block.icon = None


def _themed_blocks() -> "App":
    # Gradio 6 takes the theme and CSS in launch(); given here they apply however the app
    # is launched (python app.py, a Space, a notebook, the tests), so no caller forgets them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The parameters have been moved")
        return App(title="ContextPilot", fill_height=True, theme=theme.theme(),
                   css=theme.css(), delete_cache=DELETE_CACHE)


BRAND = ('<div class="cp-brand"><span class="cp-logo" aria-hidden="true">◆</span>'
         '<span>ContextPilot</span></div>')
EMPTY_CHAT = (
    "### Ask anything\n"
    "Pick a model above and send a message. A model that is not installed yet is "
    "downloaded first — its progress shows here — and then it answers. "
    "Everything runs on your Ollama.")
EXAMPLES = ["Explain what a context window is, in two sentences.",
            "Write a haiku about a quiet morning.",
            "Give me three ideas for a rainy weekend, as a list."]
"Prompts any chat model can answer (text only, short answers), so each works with the pick."


def _chat_tab(h: ChatHandlers, configured: str, status: gr.HTML):
    with gr.Row(elem_id="cp-picker"):
        # No Ollama call at build time: the catalog until the page loads, then the
        # installed models first (refresh_models on demo.load).
        model = gr.Dropdown(
            choices=render_models.model_choices([], catalog(), set(), key),
            value=configured, allow_custom_value=True, label="Model",
            info="Installed, cloud, then models to download. Or type any tag, e.g. "
                 "qwen3:0.6b or hf.co/user/repo:Q4_K_M.",
            elem_id="model-dropdown", scale=5, min_width=200)
        # Several hosts: where to chat (Auto: the router) and download; filled on load
        host = gr.Dropdown(choices=[("Auto", "auto")], value="auto", label="Host",
                           elem_id="host-select", visible=h.service.multi, scale=1,
                           min_width=130, allow_custom_value=True)  # checked by Service
        pull_button = gr.Button("Download", elem_id="pull-button", scale=0, min_width=110,
                                variant="primary")
        every_host = gr.Checkbox(False, label="on every host", elem_id="pull-every-host",
                                 visible=h.service.multi, scale=0, min_width=140,
                                 container=False)
    with gr.Row(elem_id="cp-model-line"):
        note = gr.HTML("", elem_id="model-note", scale=5, min_width=200, padding=False,
                       container=False)
        think = gr.Checkbox(True, label="Think", elem_id="think-toggle", visible=False,
                            scale=0, min_width=100, container=False)
        # Levels for a model that takes them (gpt-oss): a compact select, no label block.
        think_level = gr.Dropdown([("Think: low", "low"), ("Think: medium", "medium"),
                                   ("Think: high", "high")], value="medium", label="Think",
                                  show_label=False, container=False, elem_id="think-level",
                                  visible=False, scale=0, min_width=150)
        override = gr.Checkbox(False, label="Download anyway", elem_id="fit-override",
                               visible=False, scale=0, min_width=170, container=False)
    build_make_room(h.service, model, note, dict(api_visibility="private"))
    pull_status = gr.HTML("", elem_id="pull-status", padding=False, container=False)
    system = gr.Textbox(label="System prompt", value="", lines=2, render=False)
    temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature", render=False)
    num_ctx = gr.Slider(512, 131072, value=4096, step=512, label="Context length (num_ctx)",
                        render=False)
    additional = [model, system, temperature, num_ctx, think, override, think_level, host]
    chat = Chat(  # every chat text is rendered by the app: see ui.chatbot
        h.chat, model,
        multimodal=True,
        chatbot=SafeChatbot(elem_id="chatbot", height=460, placeholder=EMPTY_CHAT,
                            show_label=False),
        # stop_btn: shown while an answer or a download runs (our own box must ask for it)
        textbox=gr.MultimodalTextbox(file_types=["image"], file_count="multiple",
                                     placeholder="Message…", show_label=False,
                                     elem_id="chat-input", sources=["upload"], stop_btn=True),
        additional_inputs=additional,
        additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
        additional_outputs=[pull_status, model, note, status],
        # Only the message: the example runs with the model and settings on the page.
        examples=[[{"text": e, "files": []}] + [None] * len(additional) for e in EXAMPLES],
        cache_examples=False,
        api_name="chat",
        concurrency_limit=STREAM_CONCURRENCY + LINE_SIZE,  # the rest wait in the line
        save_history=True,
        fill_height=True,
    )
    wire(chat, h, model, note, think, think_level)
    return model, think, think_level, override, note, pull_status, pull_button, host, every_host


MAX_UPLOAD = f"{MAX_FILE_BYTES // 2**20}mb"
"""The largest file a visitor may attach (images for vision models), however the app is
launched or mounted; an operator may lower it, never raise it past MAX_FILE_BYTES."""


class App(gr.Blocks):
    """The app's Blocks: ``launch()`` defaults ``auth`` to CONTEXTPILOT_AUTH and
    whoever calls it (app.py, the CLI, a notebook, a script), so the operator's login holds
    on every launch path; the upload limit (``max_file_size``) never exceeds MAX_UPLOAD.
    Every server made for it has the gate in front (``ui.gate``: body limits, attachments,
    each visitor's share of the queue), launched or mounted; a launched one also bounds its
    idle and half-open connections (``ui.connections``).

    ``has_launched`` is set from the start: Gradio checks that a file in a request was
    uploaded (or, for outputs, is in an allowed place) only once it is True, which launch()
    does but ``gr.mount_gradio_app`` never does, so a mounted app copied any server path a
    request named into its cache and served it back."""

    def __init__(self, *args, **kwargs) -> None:
        self._max_file_size: Optional[int] = None
        self.share_requested = False
        self.gated = True  # every server of this app has the gate in front (see ui.gate)
        gate.install()
        super().__init__(*args, **kwargs)
        self.has_launched = True
        self.state_session_capacity = STATE_SESSIONS  # a mount's; launch() sets its own

    # Gradio reads the upload limit from here; launch() and mount_gradio_app() set it, to
    # None (no limit) unless told otherwise, and `gradio app.py` or a Space launch as they
    # please: whatever they set, uploads stay within MAX_FILE_BYTES.
    @property
    def max_file_size(self) -> int:
        given = self._max_file_size
        return MAX_FILE_BYTES if given is None else min(given, MAX_FILE_BYTES)

    @max_file_size.setter
    def max_file_size(self, value: Optional[int]) -> None:
        self._max_file_size = value

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

    # A caller's own queue() (a notebook's ``demo.queue().launch(share=True)``) would reset
    # the bound to None (unbounded) and the default concurrency to 1: unless it names its own,
    # the public page's settings stay.
    def queue(self, *args, **kwargs):
        bound = inspect.signature(gr.Blocks.queue).bind(self, *args, **kwargs)
        given = bound.arguments
        if given.get("max_size") is None:
            given["max_size"] = QUEUE_SIZE
        if given.get("default_concurrency_limit", "not_set") == "not_set" \
                and not settings.text("GRADIO_DEFAULT_CONCURRENCY_LIMIT"):
            given["default_concurrency_limit"] = DEFAULT_CONCURRENCY
        return super().queue(*bound.args[1:], **bound.kwargs)

    def launch(self, *args, **kwargs):
        bound = inspect.signature(gr.Blocks.launch).bind(self, *args, **kwargs)
        given = bound.arguments
        if given.get("auth") is None and given.get("auth_dependency") is None:
            given["auth"] = auth_from_env()
        # Asked to share, it is shared even when the tunnel fails (Gradio then resets
        # ``share``) or comes up later: the operator meant it for the public.
        self.share_requested = bool(given.get("share"))
        given.setdefault("state_session_capacity", STATE_SESSIONS)
        with connections.guarded_launch():  # idle and half-open connections, bounded
            return super().launch(*bound.args[1:], **bound.kwargs)


def auth_from_env() -> Optional[tuple[str, str]]:
    """CONTEXTPILOT_AUTH="user:pass" -> ("user", "pass") for ``launch(auth=...)``; else None.
    A malformed value is a SettingError (see ``contextpilot.settings.parse_auth``).

    >>> import os; os.environ["CONTEXTPILOT_AUTH"] = "ada:s3:cret"; auth_from_env()
    ('ada', 's3:cret')
    >>> del os.environ["CONTEXTPILOT_AUTH"]; auth_from_env() is None
    True
    """
    return settings.auth()

"""The chat's Chatbot component, alone in its module: Gradio writes a type stub (.pyi) beside
the module of every Component subclass when it is imported (``component_meta``), a copy of
the module that would go stale for anything else in it. What it does: ``ui.chatbot``."""

from __future__ import annotations

import inspect

import gradio as gr

from contextpilot.ui.chatbot import shown_messages, source_messages


class SafeChatbot(gr.Chatbot):
    """A Chatbot whose page shows only the HTML this app rendered: no Markdown, LaTeX or
    custom tags of its own, Gradio's sanitizer kept as a second layer. The per-message copy
    buttons would copy that HTML: code blocks have their own."""

    is_template = True  # the page draws it with Gradio's Chatbot (no frontend of its own)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.update(render_markdown=False, latex_delimiters=[], sanitize_html=True,
                      allow_tags=False, buttons=[])
        super().__init__(*args, **kwargs)

    # Gradio sends the page the props named in __init__'s signature: Chatbot's
    __init__.__signature__ = inspect.signature(gr.Chatbot.__init__)  # type: ignore[attr-defined]

    def preprocess(self, payload):
        return source_messages(super().preprocess(payload))

    def postprocess(self, value):
        return super().postprocess(None if value is None else shown_messages(list(value)))

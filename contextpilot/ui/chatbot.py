"""The chat's way in and out of the page for chat text (``safe_chatbot.SafeChatbot`` calls
``shown_messages`` and ``source_messages``) and its ChatInterface.

On the server a chat value holds source text (Markdown: what the model and the visitor
wrote). ``SafeChatbot.postprocess``, which every value sent to the page goes through, whatever
event sent it, renders it with ``render_markdown`` (titles as plain text); ``preprocess`` turns
what the page sends back (the visitor's to craft) into source again, from the sources the
parts carry. So the page only ever gets HTML this app made, and the server only ever keeps
text: a conversation saved in the browser holds text, and one saved by an older version (HTML-
escaped Markdown) is rendered the same safe way when it is opened again.

Both run in Gradio's worker threads, never on the event loop (``SafeChatInterface`` makes
reopening a saved conversation take that path too). A value from the browser is rendered as
Markdown newest first for ``HISTORY_BUDGET`` characters, what is sent to Ollama; older texts
are shown as they are (escaped, not parsed). Text the server made in this turn (``Live``) is
rendered whatever its size, from its memo on.
"""

from __future__ import annotations

import html
from typing import Any, Optional

import gradio as gr
from gradio.components.chatbot import ChatMessage, Message

from contextpilot.ui.chat_handlers import HISTORY_BUDGET
from contextpilot.ui.render_markdown import Live, shown, source_of


def _as_dict(message: Any) -> dict:
    if isinstance(message, Message):
        return message.model_dump()
    if isinstance(message, ChatMessage):
        return {"role": message.role, "content": message.content,
                "metadata": message.metadata, "options": message.options}
    return dict(message)


def _text(item: Any) -> Optional[str]:
    """The text of one content item (None for a file or a component)."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and item.get("type") == "text":
        return str(item.get("text") or "")
    return None


def shown_messages(messages: list, budget: int = HISTORY_BUDGET) -> list[dict]:
    """``messages`` as the page shows them: each text a list of safe HTML parts, each
    title escaped. Texts from the browser are parsed newest first while ``budget`` lasts."""
    left, out = budget, []
    for message in reversed(messages):
        m = _as_dict(message)
        content = m.get("content")
        items = content if isinstance(content, (list, tuple)) else [content]
        kept: list = []
        for item in reversed(items):
            text = _text(item)
            if text is None:
                kept.append(item)
                continue
            if not isinstance(text, Live):
                left -= len(text)
            parts = shown(text, markdown=left >= 0)
            kept.extend({"type": "text", "text": p} for p in reversed(parts))
        m["content"] = kept[::-1]
        if m.get("metadata") and m["metadata"].get("title") is not None:
            m["metadata"] = {**m["metadata"], "title": html.escape(str(m["metadata"]["title"]))}
        out.append(m)
    return out[::-1]


def source_messages(messages: list[dict]) -> list[dict]:
    """What the page sent back, as source: each message's texts joined from their parts'
    sources, titles unescaped. Nothing is parsed (a regular expression and ``unescape``)."""
    out = []
    for m in messages:
        items, text, at = [], [], None
        for item in m.get("content") or []:
            t = _text(item)
            if t is None:
                items.append(item)
            else:
                at = len(items) if at is None else at
                text.append(source_of(t))
        if at is not None:
            items.insert(at, {"type": "text", "text": "".join(text)})
        metadata = m.get("metadata")
        if metadata and metadata.get("title") is not None:
            metadata = {**metadata, "title": html.unescape(str(metadata["title"]))}
        out.append({**m, "content": items, "metadata": metadata})
    return out


class SafeChatInterface(gr.ChatInterface):
    """Reopening a saved conversation hands the Chatbot a plain value (rendered in a worker
    thread): Gradio's own ``gr.Chatbot(value=...)`` update is postprocessed on the event loop."""

    def _load_conversation(self, index: int, conversations: list):
        return index, conversations[index]

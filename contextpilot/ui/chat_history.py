"""The conversations the browser keeps (ChatInterface's ``save_history``), made to survive a
page closed mid-turn: the message is saved as it is sent (``chat_interface.Chat``), with
the ``unanswered`` note (ChatInterface's own save, when the answer ends, replaces it);
opening such a conversation again picks the model it asked (``asked_model``), so Retry
sends it there. Pure values: no gradio here.

Why: ChatInterface saves a conversation only when its turn ends. A page closed or reloaded
while a chat downloads a model (minutes, for a big one) lost the message, though the
download goes on (``chat_stream(detach_pull=True)``).
"""

from __future__ import annotations

from typing import Any, Optional

TITLE = "Not answered: the page closed first — press Retry or send it again"
ASKED = "unanswered:"
"The note's metadata id: ``unanswered:<model>`` (an id the chatbot does not show)."


def unanswered(model: str) -> dict:
    """What a conversation saved before its answer shows when it is opened again."""
    who = model or "the model"
    return {
        "role": "assistant",
        "content": f"This page was closed or reloaded before {who} answered. If it was "
                   f"downloading, the download goes on (see Downloads). Press Retry, or send "
                   f"the message again: it answers once the model is there.",
        "metadata": {"title": TITLE, "status": "done", "id": f"{ASKED}{model}"}}


def asked_model(conversation: Any) -> Optional[str]:
    """The model a conversation saved before its answer asked (its last message is the
    ``unanswered`` note); None otherwise. The text is the visitor's: validate it."""
    if not isinstance(conversation, list) or not conversation:
        return None
    last = conversation[-1]
    meta = last.get("metadata") if isinstance(last, dict) else None
    ident = meta.get("id") if isinstance(meta, dict) else None
    if isinstance(ident, str) and ident.startswith(ASKED) and len(ident) > len(ASKED):
        return ident[len(ASKED):]
    return None

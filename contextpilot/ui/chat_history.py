"""The conversations the browser keeps (ChatInterface's ``save_history``), made to survive a
page closed mid-turn: the message is saved as it is sent, with a note that it was not
answered (ChatInterface's own save, when the answer ends, replaces it); opening such a
conversation again picks the model it asked, so Retry sends it there.

Why: ChatInterface saves a conversation only when its turn ends. A page closed or reloaded
while a chat downloads a model (minutes, for a big one) lost the message, though the
download goes on (``chat_stream(detach_pull=True)``).
"""

from __future__ import annotations

from typing import Any, Optional

import gradio as gr

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


class Chat(gr.ChatInterface):
    """ChatInterface, with the message saved in the browser's history as it is sent
    (``keep_unanswered``), not only once its answer ends. ``picker``: the model dropdown."""

    def __init__(self, fn, picker: gr.Dropdown, **kwargs: Any) -> None:
        self.picker = picker
        super().__init__(fn, **kwargs)

    def _setup_events(self) -> None:
        # First: the message is read before ChatInterface's own submit clears the box.
        if self.save_history:
            keep_unanswered(self, self.picker)
        super()._setup_events()


def keep_unanswered(chat: gr.ChatInterface, picker: gr.Dropdown) -> None:
    """Save the conversation with the message as it is sent, with ``unanswered`` after it
    (ChatInterface's own save replaces it when the answer ends)."""

    def keep(message, history, index, saved, model):
        if not isinstance(message, dict) or not (message.get("text") or message.get("files")):
            return gr.skip(), gr.skip()
        conversation = chat._append_message_to_history(message, list(history or []), "user")
        note = unanswered(str(model or "")[:1000])
        # as the chatbot keeps messages (content as typed parts), which the history reads
        kept = chat.chatbot.postprocess(conversation + [note]).model_dump()
        return chat._save_conversation(index, kept, saved if isinstance(saved, list) else [])

    chat.textbox.submit(keep, [chat.textbox, chat.chatbot, chat.conversation_id,
                               chat.saved_conversations, picker],
                        [chat.conversation_id, chat.saved_conversations], queue=False,
                        api_visibility="private", show_progress="hidden")


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

"""The chat's ChatInterface: ``SafeChatInterface`` (every chat text rendered by the app), with
the message saved in the browser's history as it is sent, and Stop and a reopened
conversation wired to the handlers (see ``chat_history``)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from contextpilot.ui.chat_handlers import ChatHandlers
from contextpilot.ui.chat_history import unanswered
from contextpilot.ui.chatbot import SafeChatInterface


class Chat(SafeChatInterface):
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
        # as the conversation is kept: source text in typed parts (Gradio's own form, not
        # the page's rendered one: SafeChatbot renders it when it is opened again)
        kept = gr.Chatbot.postprocess(chat.chatbot, conversation + [note]).model_dump()
        return chat._save_conversation(index, kept, saved if isinstance(saved, list) else [])

    chat.textbox.submit(keep, [chat.textbox, chat.chatbot, chat.conversation_id,
                               chat.saved_conversations, picker],
                        [chat.conversation_id, chat.saved_conversations], queue=False,
                        api_visibility="private", show_progress="hidden")


def wire(chat: "Chat", h: ChatHandlers, picker: gr.Dropdown, note: gr.HTML,
         think: gr.Checkbox, think_level: gr.Dropdown) -> None:
    """Stop (besides ChatInterface's cancel: ``ChatHandlers.stop``) and a saved conversation
    opened again (``PageHandlers.reopened``: the model an unanswered one asked)."""
    private: dict = dict(api_visibility="private", show_progress="hidden")
    chat.textbox.stop(h.stop, None, None, queue=False, **private)
    # Only the chosen conversation's last message goes (its note says the model): the whole
    # saved list may be larger than an event's body may be (a 413 from ui.gate).
    chat.chat_history_dataset.click(h.reopened, [chat.chat_history_dataset,
                                                 chat.saved_conversations],
                                    [picker, note, think, think_level], js=LAST_ONLY,
                                    **private)


LAST_ONLY = "(i, saved) => [0, [((Array.isArray(saved) && saved[i]) || []).slice(-1)]]"
"Sends (0, [[the chosen conversation's last message]]) instead of (i, every conversation)."

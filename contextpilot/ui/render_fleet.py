"""Pure rendering for several Ollama hosts: where a model is installed or loaded, and the
lines around an answer (which host wrote it, how fast, which hosts were skipped; the status
chip is ``render_status``). Host names only, never an address: the
caller gives names as the request may see them (``Service.label``)."""

from __future__ import annotations

from ..types import ChatDone, ModelInfo


def where_words(m: ModelInfo) -> list[str]:
    """``['on gpu1, gpu2', 'loaded on gpu2']`` for a model on several hosts; [] for one."""
    if not m.hosts:
        return []
    words = [f"on {', '.join(m.hosts)}"]
    if m.loaded_on:
        words.append(f"loaded on {', '.join(m.loaded_on)}")
    return words


def answer_footer(done: ChatDone, host: str) -> str:
    """Under an answer from a fleet: ``gpu2 · 41 tok/s`` (plain text). Which hosts were
    skipped before it is ``Routed.message``."""
    parts = [host] if host else []
    if done.tokens_per_second:
        parts.append(f"{done.tokens_per_second:.0f} tok/s")
    return " · ".join(parts)


__all__ = ["answer_footer", "where_words"]

"""Text front end for scripts, notebooks and the CLI: a tqdm download bar and a streamed chat.

Thin consumers of the library's generators: ``pull_with_progress`` draws a byte bar
(``tqdm.auto``: a widget in Jupyter when ipywidgets is there, text elsewhere) from
``throttle(pull_model(...))``; ``print_chat`` writes an answer as it streams, with the
thinking set apart. Errors are the library's own; Ctrl-C closes the stream to Ollama, and
the partial download stays there for the next pull to resume.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TextIO, Union

from tqdm import tqdm as std_tqdm
from tqdm.auto import tqdm as auto_tqdm

from .chat import chat_stream
from .pull import throttle
from .pull import pull_model
from .types import ChatDone, ContentDelta, PullProgress, ThinkingDelta
from .units import format_duration, format_size, format_speed

STEP_TEXT = {
    "manifest": "pulling manifest",
    "download": "downloading",
    "verify": "verifying",
    "write": "writing manifest",
    "done": "done",
}
THINKING_PREFIX = "> "
DIM, RESET = "\x1b[2m", "\x1b[0m"

Messages = Union[str, Sequence[Mapping[str, Any]]]


human_bytes = format_size
"The one size formatter (``units.format_size``), under the name the CLI imports."


BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
"""tqdm's bar with the library's speed and time left as its postfix, not tqdm's own rate: a
resumed download's first count holds bytes that arrived before, and a stalled one repeats."""


class PullBar:
    """Shows ``PullProgress`` values: bytes, growing total, never backwards.

    On a terminal (or in a notebook) a tqdm bar; on a stream that is not a terminal (a log,
    a pipe) one plain line per step and per 10%, since a bar's redraws would fill it."""

    def __init__(self, model: str, file: Optional[TextIO] = None, **tqdm_kw: Any) -> None:
        factory = auto_tqdm if file is None else std_tqdm  # an explicit stream means text
        self.model = model
        self.file = file
        self.latest: Optional[PullProgress] = None
        "The newest value shown."
        self.newest: Optional[PullProgress] = None
        "The newest value received (see ``tap``)."
        self._said_resumed = False
        self.lines = file is not None and not _isatty(file)
        "Plain lines, not a bar: the stream is not a terminal."
        self._said: tuple = ()  # (step, tenth, stalled) of the last line written
        self.bar = None if self.lines else factory(
            total=None, unit="B", unit_scale=True, unit_divisor=1000, miniters=1,
            desc=f"{model}: starting", file=file, bar_format=BAR_FORMAT,
            dynamic_ncols=_isatty(file if file is not None else sys.stderr), **tqdm_kw)

    def show(self, p: PullProgress) -> None:
        self.latest = p
        if not self._said_resumed and p.resumed_bytes > 0:
            self._said_resumed = True
            self.write(f"Resumed from {format_size(p.resumed_bytes)}")
        if self.bar is None:
            self._line(p)
            return
        bar = self.bar
        if p.total > (bar.total or 0):
            bar.total = p.total  # a new layer appeared
        bar.set_description_str(f"{self.model}: {STEP_TEXT.get(p.step, p.status)}", refresh=False)
        bar.set_postfix_str(rate_text(p), refresh=False)
        if p.completed > bar.n:
            bar.update(p.completed - bar.n)
        else:
            bar.refresh()

    def _line(self, p: PullProgress) -> None:
        """One line per step, per tenth of the download, and when a stall begins."""
        tenth = int((p.fraction or 0) * 10)
        said = (p.step, tenth, p.stalled_for is not None)
        if said == self._said or (said[:2] == self._said[:2] and not said[2]):
            return
        self._said = said
        pct = 100 if p.done else int((p.fraction or 0) * 100)
        parts = [f"{self.model}: {STEP_TEXT.get(p.step, p.status)}"
                 + (f" {pct}%" if p.total else "")]
        if p.total:
            parts.append(f"{format_size(p.completed)} / {format_size(p.total)}")
        parts += [rate_text(p)] if rate_text(p) and not p.done else []
        self.write(" · ".join(parts))

    def tap(self, values: Iterator[PullProgress]) -> Iterator[PullProgress]:
        """Pass ``values`` on, remembering the newest, even one a throttle holds back."""
        for value in values:
            self.newest = value
            yield value

    def write(self, text: str) -> None:
        if self.bar is None:
            out = self.file if self.file is not None else sys.stderr
            out.write(text + "\n")
            out.flush()
        else:
            self.bar.write(text, file=self.file)

    def interrupted(self) -> None:
        """Say where a stopped download stands (the partial stays with Ollama)."""
        p = self.newest or self.latest
        if p is not None and p is not self.latest:
            self.show(p)  # a stalled stream leaves its last value in the throttle
        where = f" at {format_size(p.completed)} of {format_size(p.total)}" if p and p.total else ""
        self.close()
        self.write(f"Stopped downloading '{self.model}'{where}. "
                   f"The download can be resumed: pull it again and it continues where it stopped.")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def rate_text(p: PullProgress) -> str:
    """The speed and time left (``'1.2 MB/s, 3 min left'``), or how long no byte came."""
    if p.done:
        return ""
    if p.stalled_for is not None:
        return f"no data for {format_duration(p.stalled_for)} — Ollama is retrying"
    parts = [format_speed(p.speed)] if p.speed else []
    if p.eta is not None:
        parts.append(f"{format_duration(p.eta)} left")
    return ", ".join(parts)


def pull_with_progress(name: str, host: Optional[str] = None, *, file: Optional[TextIO] = None,
                       interval: float = 0.1, **kw: Any) -> PullProgress:
    """Pull ``name`` with a tqdm bar in bytes (speed, ETA); return the final ``PullProgress``.

    ``kw`` goes to ``pull_model`` (``stall_timeout``, ``cancel``...). Raises the library's
    errors. On Ctrl-C the stream to Ollama is closed and the partial kept for a resume.
    """
    source = pull_model(name, host, **kw)
    bar = PullBar(name, file)
    values = throttle(bar.tap(source), interval)
    try:
        for p in values:
            bar.show(p)
    except KeyboardInterrupt:
        _close(values, source)
        bar.interrupted()
        raise
    except BaseException:
        _close(values, source)
        bar.close()
        raise
    bar.close()
    assert bar.latest is not None  # a successful pull always ends with done=True
    return bar.latest


def _close(*generators: Iterator[Any]) -> None:
    # Closing the consumer ends the subscription; the last one leaving closes the socket.
    for gen in generators:
        close = getattr(gen, "close", None)
        if close:
            close()


def print_chat(model: str, prompt: Messages, host: Optional[str] = None, *,
               file: Optional[TextIO] = None, progress_file: Optional[TextIO] = None,
               show_thinking: bool = True, chat: Optional[Callable[..., Iterator[Any]]] = None,
               **kw: Any) -> str:
    """Stream the answer to ``prompt`` (a string, or chat messages) into ``file``; return it.

    A missing model is pulled first with a bar on ``progress_file`` (default: tqdm's choice).
    Thinking is printed apart from the answer: each line prefixed with "> " (and dimmed on a
    terminal). ``kw`` goes to ``chat_stream`` (system, options, think, auto_pull...), or to
    ``chat``, a function like it (a fleet's ``Fleet.chat_stream``).
    """
    out = file if file is not None else sys.stdout
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    writer = _AnswerWriter(out, show_thinking)
    events = (chat or chat_stream)(model, messages, host=host, **kw)
    bar: Optional[PullBar] = None
    cut = False
    try:
        for event in events:
            cut = cut or (isinstance(event, ChatDone) and event.done_reason == "length")
            if isinstance(event, PullProgress):
                bar = bar or PullBar(event.model, progress_file)
                bar.show(event)
                continue
            if bar is not None:
                bar.close()
                bar = None
            writer.feed(event)
    except KeyboardInterrupt:
        _close(events)
        if bar is not None:
            bar.interrupted()
        raise
    finally:
        if bar is not None:
            bar.close()
        writer.end()
    if cut:  # Ollama stopped at num_predict (or the context filled): say so, not silently
        print(LENGTH_NOTE, file=progress_file or sys.stderr)
    return writer.answer


LENGTH_NOTE = ("(The answer stopped at its length limit: raise num_predict in the options, "
               "or ask the model to continue.)")


class _AnswerWriter:
    """Writes thinking and answer deltas; keeps the answer text."""

    def __init__(self, out: TextIO, show_thinking: bool) -> None:
        self.out = out
        self.show_thinking = show_thinking
        self.dim = _isatty(out)
        self.parts: list[str] = []
        self._mode = ""  # "", "thinking" or "answer"

    @property
    def answer(self) -> str:
        return "".join(self.parts)

    def feed(self, event: Any) -> None:
        if isinstance(event, ThinkingDelta) and self.show_thinking:
            self._thinking(event.text)
        elif isinstance(event, ContentDelta):
            self._answer(event.text)
        # ChatDone: the stats are the caller's to show

    def _thinking(self, text: str) -> None:
        if self._mode != "thinking":
            self._write((DIM if self.dim else "") + THINKING_PREFIX)
            self._mode = "thinking"
        self._write(text.replace("\n", "\n" + THINKING_PREFIX))

    def _answer(self, text: str) -> None:
        if self._mode == "thinking":
            self._write((RESET if self.dim else "") + "\n\n")
        if self._mode != "answer" and not self.parts:
            text = text.lstrip("\n")
        self._mode = "answer"
        self.parts.append(text)
        self._write(text)

    def end(self) -> None:
        if self._mode == "thinking" and self.dim:
            self._write(RESET)
        if self._mode:
            self._write("\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["PullBar", "human_bytes", "print_chat", "pull_with_progress"]

"""console.py: the tqdm download bar and the streamed chat, as a user sees them."""

from __future__ import annotations

import io

import pytest
from tqdm import tqdm

import contextpilot as cp
from contextpilot import console
from tests.conftest import REMOTE
from tests.fake_ollama import FakeModel


class RecordingTqdm(tqdm):
    """A real text bar that also remembers every (n, total, description) it showed."""

    shown: list = []

    def refresh(self, *args, **kwargs):
        RecordingTqdm.shown.append((self.n, self.total, self.desc))
        return super().refresh(*args, **kwargs)

    def update(self, n=1):
        out = super().update(n)
        RecordingTqdm.shown.append((self.n, self.total, self.desc))
        return out


@pytest.fixture
def bars(monkeypatch):
    RecordingTqdm.shown = []
    monkeypatch.setattr(console, "std_tqdm", RecordingTqdm)
    return RecordingTqdm.shown


class Terminal(io.StringIO):
    """A stream that says it is a terminal: the bar is drawn (on a log it writes lines)."""

    def isatty(self) -> bool:
        return True


def _pull(fake, name="mistral", **kw):
    out = Terminal()
    final = console.pull_with_progress(name, fake.url, file=out, **kw)
    return final, out.getvalue()


def test_bar_ends_at_the_total_bytes_and_never_goes_back(fake_ollama, bars):
    fake_ollama.chunk_size = 200_000
    fake_ollama.faults.regress = True  # Ollama's completed shrinks once on a retried part
    final, text = _pull(fake_ollama, interval=0)
    # the weights: the 20,000 and 700 byte layers finish inside a tick, never announced
    assert final.done and final.fraction == 1.0 and final.total == REMOTE.layers[0]
    counts = [n for n, _, _ in bars]
    assert counts == sorted(counts)
    assert bars[-1][0] == bars[-1][1] == REMOTE.layers[0]
    assert "100%" in text and "4.00M/4.00M" in text  # decimal, as every size


def test_bar_total_grows_as_layers_appear(fake_ollama, bars):
    # a vision model: its projector is big enough to be announced after the weights
    fake_ollama.add_remote(FakeModel(name="llava:latest", layers=[3_000_000, 1_000_000, 700]))
    _pull(fake_ollama, "llava", interval=0)
    totals = [t for _, t, _ in bars if t]
    assert totals == sorted(totals)
    assert totals[0] == 3_000_000 and totals[-1] == 4_000_000


def test_description_names_each_step_in_order(fake_ollama, bars):
    _pull(fake_ollama)
    steps = []
    for _, _, desc in bars:
        step = desc.split(": ", 1)[1]
        if not steps or steps[-1] != step:
            steps.append(step)
    assert steps == ["starting", "pulling manifest", "downloading", "verifying",
                     "writing manifest", "done"]


def test_a_resumed_download_says_where_it_resumed(fake_ollama, bars):
    fake_ollama.chunk_size = 500_000
    fake_ollama.event_delay = 0.005  # lines a little apart, as Ollama's (resumed is timed)
    fake_ollama.faults.drop_pull_after = 2_000_000
    with pytest.raises(cp.PullFailed):
        _pull(fake_ollama)
    fake_ollama.faults.drop_pull_after = None
    final, text = _pull(fake_ollama)
    assert "Resumed from 2.0 MB\n" in text
    assert final.done and final.resumed_bytes == 2_000_000


def test_an_installed_model_is_not_called_resumed(fake_ollama, bars):
    final, text = _pull(fake_ollama, "llama3.2")
    assert final.done and "Resumed" not in text
    assert bars[-1][0] == bars[-1][1] == final.total


def test_ctrl_c_closes_the_stream_and_keeps_the_partial(fake_ollama, bars, monkeypatch):
    fake_ollama.chunk_size = 250_000
    fake_ollama.faults.stall_pull_after = 1_000_000  # the stream stays open at 1 MB
    real_show = console.PullBar.show

    def show(self, p):
        real_show(self, p)
        if p.completed:
            raise KeyboardInterrupt

    monkeypatch.setattr(console.PullBar, "show", show)
    with pytest.raises(KeyboardInterrupt):
        _pull(fake_ollama, interval=0)
    assert fake_ollama.disconnected.wait(2)
    assert fake_ollama.partial_bytes("mistral") > 0
    assert not cp.is_pulling("mistral", host=fake_ollama.url)


def test_ctrl_c_message_says_the_download_can_be_resumed(fake_ollama, monkeypatch):
    fake_ollama.chunk_size = 250_000
    fake_ollama.faults.stall_pull_after = 1_000_000
    out = io.StringIO()
    bar_shows = console.PullBar.show

    def show(self, p):
        bar_shows(self, p)
        if p.completed >= 250_000:
            raise KeyboardInterrupt

    monkeypatch.setattr(console.PullBar, "show", show)
    with pytest.raises(KeyboardInterrupt):
        console.pull_with_progress("mistral", fake_ollama.url, file=out, interval=0)
    last = out.getvalue().rstrip().splitlines()[-1]
    assert last.startswith("Stopped downloading 'mistral' at ")
    assert last.endswith("The download can be resumed: pull it again and it continues where "
                         "it stopped.")


def test_errors_are_the_librarys_own(fake_ollama):
    with pytest.raises(cp.ModelNotFound, match="Check the name"):
        _pull(fake_ollama, "no-such-model")


def test_print_chat_sets_thinking_apart_from_the_answer(fake_ollama):
    out = io.StringIO()
    answer = console.print_chat("qwen3:0.6b", "hello there", fake_ollama.url, file=out)
    assert answer == "You said: hello there"
    assert out.getvalue() == "> Thinking about: hello there\n\nYou said: hello there\n"


def test_print_chat_dims_thinking_on_a_terminal(fake_ollama):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    console.print_chat("qwen3:0.6b", "hi", fake_ollama.url, file=out)
    assert out.getvalue() == "\x1b[2m> Thinking about: hi\x1b[0m\n\nYou said: hi\n"


def test_print_chat_can_hide_thinking(fake_ollama):
    out = io.StringIO()
    console.print_chat("qwen3:0.6b", "hi", fake_ollama.url, file=out, show_thinking=False)
    assert out.getvalue() == "You said: hi\n"


def test_print_chat_pulls_a_missing_model_with_a_bar(fake_ollama):
    out, progress = io.StringIO(), Terminal()
    answer = console.print_chat("mistral", "hi", fake_ollama.url, file=out,
                                progress_file=progress)
    assert answer == "You said: hi" and out.getvalue() == "You said: hi\n"
    assert "mistral:latest: done: 100%" in progress.getvalue()
    assert fake_ollama.pull_requests["mistral:latest"] == 1

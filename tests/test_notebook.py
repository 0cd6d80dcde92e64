"""notebooks/quickstart.ipynb runs top to bottom against the fake Ollama server."""

from __future__ import annotations

import socket

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT, THINKER

NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def _widget_text(nb) -> str:
    """The final text of tqdm's widget bars (its description and counters), if any."""
    state = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    parts = []
    for model in state.values():
        value = model.get("state", {}).get("value")
        if isinstance(value, str):
            parts.append(value)
    return " ".join(parts).replace("\u2007", " ")  # tqdm pads widget text with figure spaces


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    # every code cell has a sentence of explanation before it
    kinds = [c.cell_type for c in nb.cells]
    assert all(kinds[i - 1] == "markdown" for i, k in enumerate(kinds) if k == "code")


def test_the_notebook_runs_top_to_bottom(fake_ollama, monkeypatch):
    port = _free_port()
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("GRADIO_SERVER_PORT", str(port))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the notebook finds the package itself
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    status, listing, pull, stream, oneliner, launch, _ = (_text(c) for c in code)
    assert f"host='{fake_ollama.url}', reachable=True" in status
    assert "qwen3:0.6b" in listing and "llama3.2:latest" in listing
    assert f"(True, {THINKER.size})" in pull
    assert "qwen3:0.6b: done: 100%" in pull + _widget_text(nb)  # a widget bar in Jupyter
    assert "You said: Why is the sky blue? One sentence." in stream
    assert "Thinking: Thinking about: Why is the sky blue?" in stream
    assert "> Thinking about: Say hello in French.\n\nYou said: Say hello in French." in oneliner
    assert f"http://127.0.0.1:{port}/" in launch
    assert fake_ollama.pull_requests["qwen3:0.6b"] == 1
    with socket.socket() as s:  # demo.close() freed the port
        s.bind(("127.0.0.1", port))

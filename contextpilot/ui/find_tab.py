"""The Find models tab: search Hugging Face for GGUF models, see each quantisation's size
and whether it fits this machine, and "Use this model", which puts
``hf.co/<repo>:<QUANT>`` in the chat's model dropdown (the chat then downloads it as usual,
after the same policy and fit checks). Handlers go through ``Service``; every error is a
sentence in the tab's status line, never a traceback."""

from __future__ import annotations

import asyncio
from typing import Optional, Sequence

import gradio as gr

import contextpilot as cp
from contextpilot.ui import render
from contextpilot.ui.service import Service
from contextpilot.units import format_size


def repo_label(m: cp.HubModel) -> str:
    when = f" · updated {m.last_modified:%Y-%m-%d}" if m.last_modified else ""
    return f"{m.id} — {m.downloads:,} downloads · {m.likes:,} likes{when}"


def fit_words(q: cp.HubQuant) -> str:
    v = q.fit
    if v is None:
        return "fit unknown"
    if v.fits_disk is False:
        return "no room on disk"
    if v.fits_memory is False:
        return f"too big for memory (needs ≈ {format_size(v.memory_needed)})"
    return f"fits (≈ {format_size(v.memory_needed)} of memory)"


def quant_label(q: cp.HubQuant) -> str:
    star = " ★ recommended" if q.recommended else ""
    return f"{q.tag} — {format_size(q.size)} — {fit_words(q)}{star}"


def quant_table(quants: Sequence[cp.HubQuant]) -> str:
    """Every file of the repository with its size and fit, unpullable ones with the reason
    (escaped HTML)."""
    rows = "".join(
        f'<tr data-tag="{render.escape(q.tag)}" data-fit="{_fit_kind(q)}">'
        f"<td>{render.escape(q.tag)}</td><td>{format_size(q.size)}</td>"
        f"<td>{render.escape(fit_words(q) if q.pullable else q.reason)}</td>"
        f"<td>{'★' if q.recommended else ''}</td></tr>" for q in quants)
    return ('<div class="cp-card cp-quants-card"><table class="cp-quants"><thead><tr>'
            '<th>Quantisation</th><th>Size</th><th>Fit on this machine</th><th></th></tr>'
            f"</thead><tbody>{rows}</tbody></table></div>")


def _fit_kind(q: cp.HubQuant) -> str:
    """For the page's colours: fits, warn (memory), stop (disk, or not pullable), unknown."""
    v = q.fit
    if not q.pullable or (v is not None and v.fits_disk is False):
        return "stop"
    if v is None:
        return "unknown"
    return "warn" if v.fits_memory is False else "fits"


def _error(exc: Exception) -> str:
    return f"⚠️ {render.escape(str(exc))}"


def build_find_tab(service: Service, chat_model: gr.Dropdown, note: gr.Markdown,
                   tabs: gr.Tabs, private: dict) -> None:
    """Render the tab where it is called and wire its events."""
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Search Hugging Face for GGUF models", max_lines=1,
                           placeholder="e.g. llama 3.2 1b instruct", elem_id="find-query",
                           scale=4)
        search = gr.Button("Search", elem_id="find-search", variant="primary", scale=0,
                           min_width=120)
    status = gr.Markdown(elem_id="find-status")
    results = gr.Radio(choices=[], label="Repositories (most downloaded first)",
                       elem_id="find-results", visible=False)
    quants = gr.Radio(choices=[], label="Quantisations that Ollama can pull",
                      elem_id="find-quants", visible=False)
    table = gr.HTML(elem_id="find-quant-table")
    use = gr.Button("Use this model", elem_id="use-model", variant="primary",
                    interactive=False)

    async def do_search(text: str):
        hidden = gr.Radio(choices=[], value=None, visible=False)
        try:
            found = await asyncio.to_thread(service.search, text or "")
        except cp.ContextPilotError as exc:
            return _error(exc), hidden, hidden, "", gr.Button(interactive=False)
        if not found:
            said = f"No GGUF models found for “{render.escape(' '.join(text.split()))}”."
            return said, hidden, hidden, "", gr.Button(interactive=False)
        choices = [(repo_label(m), m.id) for m in found]
        return (f"{len(found)} repositories. Choose one to see its quantisations.",
                gr.Radio(choices=choices, value=None, visible=True), hidden, "",
                gr.Button(interactive=False))

    async def pick_repo(repo: Optional[str]):
        hidden = gr.Radio(choices=[], value=None, visible=False)
        if not repo:
            return gr.skip(), hidden, "", gr.Button(interactive=False)
        try:
            found = await asyncio.to_thread(service.quants, repo)
        except cp.ContextPilotError as exc:
            return _error(exc), hidden, "", gr.Button(interactive=False)
        pullable = [q for q in found if q.pullable]
        best = next((q.name for q in pullable if q.recommended), None)
        said = (f"hf.co/{render.escape(repo)}: {len(pullable)} quantisation"
                f"{'s' if len(pullable) != 1 else ''} Ollama can pull"
                + (", the recommended one is chosen." if best else "."))
        return (said, gr.Radio(choices=[(quant_label(q), q.name) for q in pullable],
                               value=best, visible=bool(pullable)),
                quant_table(found), gr.Button(interactive=bool(best)))

    def pick_quant(name: Optional[str]):
        return gr.Button(interactive=bool(name))

    async def use_model(name: Optional[str]):
        if not name:
            return gr.skip(), gr.skip(), "Choose a quantisation first.", gr.skip()
        try:
            cp.parse_name(name)
        except cp.InvalidModelName as exc:
            return gr.skip(), gr.skip(), _error(exc), gr.skip()
        said = await asyncio.to_thread(service.note, name)
        return (gr.Dropdown(value=name), gr.Tabs(selected="chat"),
                f"{render.escape(name)} is now the chat's model.", said)

    outputs = [status, results, quants, table, use]
    search.click(do_search, [query], outputs, api_name="find_models", **private)
    query.submit(do_search, [query], outputs, **private)
    results.input(pick_repo, [results], [status, quants, table, use], api_name="model_files",
                  **private)
    quants.input(pick_quant, [quants], [use], **private)
    use.click(use_model, [quants], [chat_model, tabs, status, note], **private)

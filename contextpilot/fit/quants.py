"""A Hugging Face repository's quantisations, each with a fit verdict for this machine, and
the one to choose: the largest that fits in memory with room for the context (Q4_K_M when
several do)."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from .. import hub
from ..names import parse_name
from ..types import HubQuant
from .verdict import check_context, fit_for_size


def model_files(repo: str, quant: Optional[str] = None, *, context_length: Optional[int] = None,
                host: Optional[str] = None, token: hub.Token = None) -> list[HubQuant]:
    """The quantisations of ``repo`` with their sizes, whether Ollama can pull each, a fit
    verdict for this machine and the recommended one. With ``quant``, that one only
    (HubNotFound when the repository has no such quantisation). ``token``: the Hugging
    Face token sent (None: huggingface_hub's own; False: none, for a visitor)."""
    check_context(context_length)
    rid = hub.repo_id(repo)
    quants = hub.quants_of(rid, hub.repo_files(rid, token=token))
    if quant is not None:
        quants = [hub.pick_quant(rid, quants, quant)]
    # Every quantisation of a repository has the same layers: one header read serves all.
    first = next((q for q in quants if q.pullable), None)
    arch = hub.file_arch(rid, first.files[0], token=token) if first else None
    fitted = [q if not q.pullable or q.size <= 0 else replace(q, fit=fit_for_size(
        parse_name(q.name), q.size, source="hub", host=host, context_length=context_length,
        arch=arch)) for q in quants]
    return _recommend(fitted)


def _recommend(quants: list[HubQuant]) -> list[HubQuant]:
    """The largest that fits in memory with room for the context; Q4_K_M when several do."""
    fitting = [q for q in quants if q.pullable and q.fit is not None
               and q.fit.fits_memory and q.fit.fits_disk is not False]
    if not fitting:
        return quants
    best = next((q for q in fitting if q.tag.upper() == hub.DEFAULT_QUANT), None)
    if best is None or len(fitting) == 1:
        best = max(fitting, key=lambda q: q.size)
    return [replace(q, recommended=True) if q is best else q for q in quants]


__all__ = ["model_files"]

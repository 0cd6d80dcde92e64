"""Will it fit? What a model needs, and whether this machine has it — before a byte moves.

The concern, by module:

- ``sizes``: the download size from the first source that knows — ``catalog`` (popular
  models, with ``catalog.json``), the installed copy, ``registry`` (the manifest), the
  Hugging Face Hub (``contextpilot.hub``), else ``probe`` (a pull stopped at once);
  ``lookup`` is the value they return;
- ``estimate``: memory = the file + the KV cache at a context (pure arithmetic);
- ``verdict``: the verdict (disk, RAM, GPU, from ``contextpilot.machine``) in sentences;
- ``room``: which installed models to remove to make room, least recently used first
  (``usage``: when the app last chatted with each);
- ``quants``: a Hub repository's quantisations, each with its verdict and the recommended one.

This module is the public face (``check_fit``, ``model_files``). It is also where the probe
is wired in: the fit check takes the pull engine's ``probe_pull`` as a parameter, so the
pull engine (whose disk guard reads ``machine``) never needs the fit check.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from ..hub import Token
from ..names import ModelName, parse_name
from ..pull import probe_pull
from ..types import FitVerdict
from . import verdict
from .quants import model_files
from .sizes import find_size
from .verdict import check_context, cloud_verdict


def check_fit(name: Union[str, ModelName], host: Optional[str] = None, *,
              context_length: Optional[int] = None, probe: bool = True,
              trusted_only: bool = False, token: Token = None) -> FitVerdict:
    """Whether ``name`` fits this machine's disk and memory, with the figures and a message.

    The download size comes from the catalog, an installed copy, the registry's manifest,
    the Hugging Face Hub (``hf.co/...``) or, when none answers, a probe (the pull started
    through Ollama and stopped at the first layer's size; Ollama keeps the partial).
    ``size_source`` says which. Memory = the file + the KV cache at ``context_length``
    (default 4096). ``probe=False``: reuse a recent probe's answer but start none.
    ``trusted_only`` (a shared app): ask only the default registry and the Hub, and never
    probe a name on another host. ``token``: the Hugging Face token sent (None:
    huggingface_hub's own; False: none, for a visitor's request). Cloud models are not
    checked.
    """
    check_context(context_length)
    parsed = parse_name(name)
    if parsed.is_cloud:
        return cloud_verdict(str(name).strip())
    found, arch = find_size(parsed, host, probe_pull if probe else None, trusted_only, token)
    return verdict.fit_for_size(parsed, found.size, source=found.source, host=host,
                                context_length=context_length, arch=arch,
                                lookup_note=found.note, missing=found.missing)


def fit_for_size(name: Union[str, ModelName], size: Optional[int], *, source: str = "unknown",
                 host: Optional[str] = None, context_length: Optional[int] = None,
                 arch: Optional[Sequence[int]] = None, lookup_note: str = "",
                 missing: bool = False) -> FitVerdict:
    """The verdict for ``name`` once its download size is known (or not)."""
    return verdict.fit_for_size(parse_name(name), size, source=source, host=host,
                                context_length=context_length, arch=arch,
                                lookup_note=lookup_note, missing=missing)


__all__ = ["check_fit", "fit_for_size", "model_files"]

"""The download size of any model, from the first source that knows: the installed copy,
the catalog, the registry's manifest, the Hugging Face Hub (``hf.co/...`` names), else a
probe (a pull through Ollama stopped at the first layer's size).

- ``CONTEXTPILOT_REGISTRY_LOOKUP=0``: ask neither a registry nor the Hub (an offline
  machine); the probe remains. ``CONTEXTPILOT_SIZE_PROBE=0``: never start a probe pull.
- ``trusted_only`` (a shared app): nothing here contacts a host a visitor named: only the
  default registry and the Hub are asked, and no probe makes Ollama contact another host.
"""

from __future__ import annotations

from typing import Optional

from .. import hub, models, settings
from ..errors import HubNotFound, HubUnavailable, InvalidRequest
from ..names import DEFAULT_HOST, ModelName
from . import probe as probing
from .catalog import catalog_entry
from .lookup import SizeLookup
from .registry import registry_size

Arch = Optional[tuple[int, int, int]]


def find_size(name: ModelName, host: Optional[str], pull: Optional[probing.Puller],
              trusted_only: bool, token: hub.Token = None) -> tuple[SizeLookup, Arch]:
    """(SizeLookup, arch) from the first source that knows. ``pull``: the probe's pull, or
    None to reuse a recent probe's answer but start none; ``token``: the Hub's (see
    ``contextpilot.hub``)."""
    entry = catalog_entry(name)
    have = _installed(name, host)  # what is on disk, before the catalog's approximate figure
    if have is not None:
        return have, entry.arch if entry is not None else None
    if entry is not None:
        return SizeLookup(entry.size, "catalog"), entry.arch
    found = remote_size(name, trusted_only, token)
    if found.size is not None or found.missing:
        return found, found.arch
    earlier = probing.cached_probe(name, host)
    if earlier is not None:
        return earlier, None
    trusted = name.host.lower() == DEFAULT_HOST or hub.is_hf(name)
    if pull is not None and settings.flag("CONTEXTPILOT_SIZE_PROBE") and (
            trusted or not trusted_only):
        probed = probing.probe_size(name, host, pull)
        if probed.size is not None or probed.missing:
            return probed, None
        return SizeLookup(note=f"{found.note} {probed.note}".strip()), None
    return found, None


def _installed(name: ModelName, host: Optional[str]) -> Optional[SizeLookup]:
    try:
        have = models.installed(name, host)
    except Exception:  # an unreachable host must not stop a fit check
        return None
    return None if have is None else SizeLookup(have.size, "installed")


def remote_size(name: ModelName, trusted_only: bool, token: hub.Token = None) -> SizeLookup:
    """The registry's manifest, or the Hub for hf.co names; never a visitor's host when
    ``trusted_only``."""
    if not settings.flag("CONTEXTPILOT_REGISTRY_LOOKUP"):
        return SizeLookup(note="")
    if hub.is_hf(name):
        return hub_size(name, token)
    if trusted_only and name.host.lower() != DEFAULT_HOST:
        return SizeLookup(note="")
    return registry_size(name)


def hub_size(name: ModelName, token: hub.Token = None) -> SizeLookup:
    """The size of the GGUF file ``hf.co/<user>/<repo>:<tag>`` would pull."""
    rid = f"{name.namespace}/{name.model}"
    try:
        q = hub.pick_quant(rid, hub.quants_of(rid, hub.repo_files(rid, token=token)),
                           name.tag)
    except (HubNotFound, InvalidRequest) as exc:
        return SizeLookup(missing=True, note=str(exc))
    except HubUnavailable as exc:
        return SizeLookup(note=str(exc))
    if not q.pullable:
        return SizeLookup(size=q.size, source="hub", missing=True,
                          note=f"{q.name} is {q.reason}.")
    if q.size <= 0:  # the Hub listed the file without a usable size
        return SizeLookup(note=f"The Hugging Face Hub did not give the size of {q.name}.")
    return SizeLookup(size=q.size, source="hub",
                      arch=hub.file_arch(rid, q.files[0], token=token))


__all__ = ["find_size", "hub_size", "remote_size"]

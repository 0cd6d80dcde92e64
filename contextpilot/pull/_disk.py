"""The disk guard: stop a pull as soon as a layer's size shows it cannot fit.

A layer announces its size when it starts (the first is the weights, nearly the whole model),
so the check runs once per new layer, in the pull thread, with no lock held: measuring the
disk may take a while, and nobody else must wait for it.
"""

from __future__ import annotations

from typing import Optional

from .. import machine, settings
from ..types import PullProgress
from ..units import format_size


class DiskGuard:
    """Whether what is left of a pull fits on Ollama's disk (a local host only)."""

    def __init__(self, host: str, enabled: bool = True) -> None:
        self.enabled = enabled and machine.is_local_host(host) and (
            settings.flag("CONTEXTPILOT_DISK_CHECK"))

    def refusal(self, previous: Optional[PullProgress], value: PullProgress) -> Optional[str]:
        """Why the pull must stop (the abort reason), or None to go on."""
        if not self.enabled or value.total <= (previous.total if previous else 0):
            return None
        missing = value.total - value.completed
        free = machine.guard_disk()
        if free is None or missing <= free:
            return None
        return (f"no space left on device: {format_size(missing)} more is needed and only "
                f"{format_size(free)} is free")

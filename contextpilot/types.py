"""Typed, immutable values the library yields and returns. No I/O, no display strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional, Union


def non_chat_kind(capabilities: Optional[Iterable[str]]) -> str:
    """What a model that cannot chat is (Ollama lists capabilities, not "completion"):
    "embedding", "image" or "other"; '' for a chat model or when none are listed."""
    caps = tuple(capabilities or ())
    if not caps or "completion" in caps:
        return ""
    return "embedding" if "embedding" in caps else "image" if "image" in caps else "other"


@dataclass(frozen=True)
class ModelInfo:
    """One installed model, as /api/tags reports it."""

    name: str
    "Ollama's display name, e.g. ``llama3.2:latest``."
    size: int
    "Bytes on disk."
    modified_at: Optional[datetime] = None
    digest: str = ""
    family: str = ""
    parameter_size: str = ""
    "e.g. ``3.2B``."
    quantization: str = ""
    "e.g. ``Q4_K_M``."
    format: str = ""
    remote_model: str = ""
    "For a cloud model's stub: the model it runs on ``remote_host``."
    remote_host: str = ""
    "For a cloud model's stub: where it runs, e.g. ``https://ollama.com:443``."
    capabilities: tuple[str, ...] = ()
    "As /api/tags reports them (today's servers), e.g. ('completion', 'thinking')."
    context_length: Optional[int] = None
    "The model's own context length, when /api/tags reports it."
    embedding_length: Optional[int] = None
    "The width of its embeddings, when /api/tags reports it (today's servers)."
    hosts: tuple[str, ...] = ()
    "A fleet's list: the names of the hosts where it is installed (() for one host)."
    loaded_on: tuple[str, ...] = ()
    "A fleet's list: the names of the hosts where it is in memory now."

    @property
    def can_chat(self) -> Optional[bool]:
        """Whether it chats (Ollama's "completion" capability); None when not reported."""
        return "completion" in self.capabilities if self.capabilities else None

    @property
    def is_cloud(self) -> bool:
        """Runs on ollama.com, not on this machine (a cloud stub or a cloud name)."""
        tag = self.name.rpartition(":")[2].lower()
        return bool(self.remote_host) or tag == "cloud" or tag.endswith("-cloud")


@dataclass(frozen=True)
class PullProgress:
    """The state of one model's download, folded over all its layers.

    ``completed`` and ``fraction`` never go backwards; ``total`` grows as layers appear
    (Ollama announces each layer's size only when that layer starts).
    """

    model: str
    "The model being pulled (display form)."
    status: str
    "Ollama's step text: 'pulling manifest', 'pulling 1a2b3c4d5e6f', 'verifying sha256 digest'..."
    completed: int = 0
    "Bytes present over all layers seen so far (clamped: never decreases)."
    total: int = 0
    "Sum of the sizes of all layers seen so far (0 before any is known)."
    fraction: Optional[float] = None
    "0..1, never decreasing; None before any size is known; 1.0 on the final value."
    speed: Optional[float] = None
    "Smoothed bytes per second of new data; None until it means something."
    eta: Optional[float] = None
    "Seconds left at the current speed; None when unknown."
    done: bool = False
    "True on the final value (Ollama said success)."
    resumed_bytes: int = 0
    """Bytes of an interrupted download that Ollama kept and this pull resumed from (0 for a
    layer already complete on disk, and for a download that restarted from zero)."""
    digest: str = ""
    "The layer of the latest event, when there is one."
    stalled_for: Optional[float] = None
    """Seconds since the last new byte, once that is a few seconds (``STALL_NOTICE``) while
    downloading (Ollama is retrying a stalled part); None while bytes flow. ``eta`` is None
    then, and ``speed`` decays toward 0."""
    host: str = ""
    "A fleet's pull: the name of the host it downloads to ('' for one host)."

    @classmethod
    def _fast(cls, fields: dict) -> "PullProgress":
        # The folder makes one value per raw event (100k for a big pull); the generated
        # frozen __init__ costs ~2 us a value, filling __dict__ directly ~0.4 us. Every
        # field must be in ``fields``.
        value = object.__new__(cls)
        value.__dict__.update(fields)
        return value

    @property
    def step(self) -> str:
        """A stable name for the step: manifest, download, verify, write, done or other."""
        s = self.status
        if self.done or s == "success":
            return "done"
        if s == "pulling manifest":
            return "manifest"
        if s.startswith("pulling") or s.startswith("downloading"):
            return "download"
        if s.startswith("verifying"):
            return "verify"
        if s.startswith("writing") or s.startswith("removing"):
            return "write"
        return "other"


@dataclass(frozen=True)
class ContentDelta:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    """A piece of a thinking model's reasoning, apart from the answer."""

    text: str
    elapsed: float = 0.0
    "Seconds since the model began thinking, at this piece."


@dataclass(frozen=True)
class ChatDone:
    """The end of an answer, with Ollama's stats (durations in nanoseconds, as Ollama sends)."""

    model: str
    done_reason: str = ""
    eval_count: int = 0
    "Tokens generated."
    prompt_eval_count: int = 0
    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_duration: int = 0
    eval_duration: int = 0
    thinking_seconds: Optional[float] = None
    "How long the model thought (first thought to first word of the answer); None: it did not."
    host: str = ""
    "A fleet's answer: the name of the host that wrote it ('' for one host)."

    @property
    def tokens_per_second(self) -> Optional[float]:
        if not self.eval_count or not self.eval_duration:
            return None
        return self.eval_count / (self.eval_duration / 1e9)


@dataclass(frozen=True)
class Routed:
    """A fleet's chat: which host answers, yielded once before the answer's first event."""

    host: str
    "The name of the host that answers."
    skipped: tuple[tuple[str, str], ...] = ()
    """Hosts tried first that failed before the first token, in order, each with what
    happened: "did not answer", "was busy" or "stopped before answering"."""
    pull: bool = False
    "No host that answers has the model: it is downloaded on ``host`` first."

    @property
    def message(self) -> str:
        """What happened, as a sentence; "" when the first choice answered.

        >>> Routed("gpu2", (("gpu1", "did not answer"),)).message
        'gpu1 did not answer; answered by gpu2'
        """
        if not self.skipped:
            return ""
        return "; ".join(f"{name} {why}" for name, why in self.skipped) + (
            f"; answered by {self.host}")


ChatEvent = Union[PullProgress, ContentDelta, ThinkingDelta, ChatDone, Routed]


@dataclass(frozen=True)
class ModelDetails:
    """What /api/show says of an installed model."""

    name: str
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    format: str = ""
    context_length: Optional[int] = None
    capabilities: tuple[str, ...] = ()
    "e.g. ('completion', 'tools', 'vision', 'thinking')."
    license: str = ""
    "The first lines of the license."
    parameters: str = ""
    template: str = ""
    modified_at: Optional[datetime] = None

    @property
    def supports_vision(self) -> bool:
        return "vision" in self.capabilities

    @property
    def supports_thinking(self) -> bool:
        return "thinking" in self.capabilities


@dataclass(frozen=True)
class RunningModel:
    """A model loaded in memory now, from /api/ps."""

    name: str
    size: int = 0
    "Bytes in memory."
    size_vram: int = 0
    "Bytes of that in GPU memory."
    expires_at: Optional[datetime] = None
    context_length: Optional[int] = None
    host: str = ""
    "A fleet's list: the name of the host it runs on ('' for one host)."


@dataclass(frozen=True)
class ServerStatus:
    """Whether Ollama answers at ``host`` and which version it is."""

    host: str
    reachable: bool
    version: str = ""
    error: str = ""
    "The library's message when not reachable."
    cloud: Optional[bool] = None
    "Cloud models available (/api/status): True, False (switched off), None (not known)."


@dataclass(frozen=True)
class HostStatus:
    """One host of a fleet, as it reports itself (and as this process uses it)."""

    name: str
    "The host's name in OLLAMA_HOSTS (what messages and a shared app show)."
    url: str
    "Its address (an operator's fact: a shared app never shows it)."
    reachable: bool
    version: str = ""
    "Ollama's version there, when it answered."
    error: str = ""
    "Why it is not reachable (names the host, never its address); '' when it is."
    installed: tuple[str, ...] = ()
    "Names of the models installed there, as Ollama lists them."
    loaded: tuple[str, ...] = ()
    "Names of the models in its memory now (/api/ps)."
    in_flight: int = 0
    "Answers this process is streaming from it now."
    cloud: Optional[bool] = None
    "Cloud models available there (/api/status): True, False (switched off), None (unknown)."


@dataclass(frozen=True)
class FitVerdict:
    """Whether a model fits this machine before it is downloaded."""

    model: str
    download_size: Optional[int]
    "Bytes to download (None when unknown)."
    memory_needed: Optional[int]
    "Estimated bytes of memory to run it."
    free_disk: Optional[int]
    "Free bytes where Ollama keeps models (None: cannot be known, e.g. a remote host)."
    total_memory: Optional[int]
    "RAM of this machine in bytes."
    gpu_memory: Optional[int] = None
    fits_disk: Optional[bool] = None
    fits_memory: Optional[bool] = None
    message: str = ""
    size_source: str = ""
    "Where the download size came from: catalog, registry, hub, probe, installed or unknown."
    notes: tuple[str, ...] = field(default_factory=tuple)
    context_length: Optional[int] = None
    "The context the memory estimate allows for (tokens)."
    kv_cache: Optional[int] = None
    "Bytes of that estimate for the KV cache at ``context_length``."
    make_room: tuple[str, ...] = ()
    """Installed models whose removal would make room on the disk (least recently used and
    largest first); empty when the disk is not the problem."""
    cloud: bool = False
    "An ollama.com cloud model: it runs there, nothing is downloaded or checked."
    missing: bool = False
    """The registry (or the Hub) says there is no such model or tag, or Ollama cannot pull
    it: nothing to download."""


@dataclass(frozen=True)
class HubModel:
    """A GGUF repository on the Hugging Face Hub, as a search finds it."""

    id: str
    "``user/repo``; Ollama pulls its files as ``hf.co/<id>:<QUANT>``."
    downloads: int = 0
    likes: int = 0
    last_modified: Optional[datetime] = None


@dataclass(frozen=True)
class HubQuant:
    """One quantisation of a Hub repository (or its vision projector)."""

    repo: str
    tag: str
    "Ollama's tag, e.g. ``Q4_K_M``."
    size: int
    "Bytes to download (split files summed)."
    files: tuple[str, ...] = ()
    pullable: bool = True
    "Whether Ollama can pull it (a sharded GGUF or a projector cannot be pulled alone)."
    reason: str = ""
    "Why it cannot be pulled, when it cannot."
    projector: bool = False
    "A vision projector (``mmproj-*``), not a model."
    fit: Optional[FitVerdict] = None
    recommended: bool = False
    """The one to choose: the largest that fits in memory with room for the context (Q4_K_M
    when several do)."""

    @property
    def name(self) -> str:
        """The name to pull: ``hf.co/<repo>:<tag>``."""
        return f"hf.co/{self.repo}:{self.tag}"


@dataclass(frozen=True)
class ModelRecommendation:
    """A model the Ollama server recommends for its machine
    (/api/experimental/model-recommendations, Ollama v0.22.1+)."""

    model: str
    description: str = ""
    context_length: Optional[int] = None
    max_output_tokens: Optional[int] = None
    vram_bytes: Optional[int] = None
    "Memory it needs at that context, by Ollama's estimate."
    required_plan: str = ""
    "An ollama.com plan a cloud model needs ('' for local models)."


@dataclass(frozen=True)
class PullOutcome:
    """How a pull that ran in this process ended (see ``recent_pulls``)."""

    model: str
    "The model pulled (display form)."
    host: str
    "The Ollama host it was pulled from (a URL)."
    outcome: str
    "``done``, ``failed`` or ``cancelled``."
    message: str
    "The error's message (what went wrong and what to do); '' when done."
    ended_at: datetime
    "When it ended (UTC, timezone-aware)."
    completed: int = 0
    "Bytes present over all layers seen when it ended."
    total: int = 0
    "Sum of the sizes of all layers seen (0 when none was announced)."

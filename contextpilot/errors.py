"""The exceptions of contextpilot: facts as attributes, a message that says what to do.

    ContextPilotError
     ├── OllamaUnavailable      nothing answers at the host (or it went away mid-stream)
     │    └── NoHostAvailable   a fleet: no host answers (the message names each one's state)
     ├── InvalidModelName       refused before any request is sent (also a ValueError)
     ├── ModelNotFound          no such model installed / in the registry
     ├── PullFailed             a download ended without success (reason says why)
     │    └── PullCancelled     cancel_pull() or the last consumer left
     ├── NotAllowed             a shared app's rules refuse the action
     ├── InvalidRequest         our own request was malformed (e.g. an unreadable image)
     │    └── NotAChatModel     the model cannot chat (embedding, image generation...)
     ├── SettingError           a setting (environment variable) we cannot use (a ValueError)
     └── OllamaError            any other error Ollama reported
          ├── OllamaBusy        503: too many requests waiting (after a few quiet retries)
          ├── ModelCrashed      the model runner stopped, or the model does not fit in memory
          ├── CloudSignInRequired  401: a cloud model, and this Ollama is not signed in
          └── CloudDisabled     403: cloud models are switched off on this server

Only ``_client.py`` turns ``ollama``/``httpx`` errors into these; front ends turn these into
their own medium (a chat message, a stderr line). Nothing here imports ollama or a UI toolkit.
"""

from __future__ import annotations

from .types import non_chat_kind

INSTALL_URL = "https://ollama.com/download"
LIBRARY_URL = "https://ollama.com/library"


class ContextPilotError(Exception):
    """Base class: every error the library raises on purpose."""

    host_name: str = ""
    "A fleet's error: the name of the host it happened on ('' for one host)."
    failures: tuple[tuple[str, "ContextPilotError"], ...] = ()
    "A fleet's action on several hosts: (host name, its error) for each host that failed."


class OllamaUnavailable(ContextPilotError, ConnectionError):
    """Nothing answers at ``host``, or the connection dropped while ``during`` something."""

    def __init__(self, host: str, during: str | None = None, *,
                 message: str | None = None, kind: str = "") -> None:
        self.host = host
        self.during = during
        self.kind = kind
        "How it failed, when known: 'refused', 'connect timeout' or 'lost'."
        if message:
            msg = message
        elif during:
            msg = (
                f"Lost the connection to Ollama at {host} during the {during}. "
                f"Please ensure Ollama is still running ('ollama serve') and try again."
            )
        else:
            msg = (
                f"Cannot connect to Ollama server at {host}. Please ensure Ollama is installed "
                f"and running. Install: {INSTALL_URL} | Start: 'ollama serve'"
            )
        super().__init__(msg)


class NoHostAvailable(OllamaUnavailable):
    """A fleet has no host that answers now: ``states`` says, for each host by name, what
    happened to it (its address is never part of the message)."""

    def __init__(self, states: "list[tuple[str, str]] | tuple[tuple[str, str], ...]") -> None:
        self.states = tuple(states)
        names = ", ".join(name for name, _ in self.states)
        each = "; ".join(f"{name} {state}" for name, state in self.states)
        many = len(self.states) > 1
        super().__init__(names, message=(
            f"No Ollama host answers: {each}. Start Ollama on {'one of them' if many else 'it'} "
            f"('ollama serve') or check OLLAMA_HOSTS; ContextPilot tries "
            f"{'them' if many else 'it'} again in the background."))


class InvalidModelName(ContextPilotError, ValueError):
    """The name cannot be an Ollama model name; raised before anything is sent."""

    def __init__(self, name: object, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(
            f"Invalid model name {_show(name)}: {reason}. Use a name like 'llama3.2', "
            f"'qwen3:0.6b', 'user/model:tag' or 'hf.co/user/repo:Q4_K_M'."
        )


class ModelNotFound(ContextPilotError, LookupError):
    """``model`` is not installed (``installed_only``) or the registry has no such model."""

    def __init__(self, model: str, *, installed_only: bool = False, auto: bool = False,
                 cloud: bool = False) -> None:
        self.model = model
        self.installed_only = installed_only
        self.cloud = cloud
        self.reason = "not installed" if installed_only else "no such model in the registry"
        if cloud:
            self.reason = "no such cloud model"
            msg = (f"Cloud model '{model}' was not found on ollama.com. Check the name and tag "
                   f"(see https://ollama.com/search?c=cloud).")
        elif installed_only:
            msg = f"Model '{model}' is not installed. Please pull it first: ollama pull {model}"
        elif _registry_host(model):  # hf.co/..., a private registry: not ollama.com's library
            where = _registry_host(model)
            self.reason = f"no such model or tag on {where}"
            lead = (f"Model '{model}' is not installed, and {where} has no such model or "
                    f"tag to download." if auto else f"Model '{model}' was not found on {where}.")
            msg = f"{lead} Check the name and tag there."
        else:
            lead = (
                f"Model '{model}' is not installed, and the Ollama registry has no such model "
                f"or tag to download." if auto
                else f"Model '{model}' was not found in the Ollama registry."
            )
            msg = f"{lead} Check the name and tag (see {LIBRARY_URL})."
        super().__init__(msg)

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0])


def _registry_host(model: str) -> str:
    """The registry a name pulls from when it is not Ollama's own (registry.ollama.ai):
    "hf.co" (Hugging Face), "127.0.0.1:5000"...; "" for the default one."""
    parts = model.split("://", 1)[-1].split("/")
    if len(parts) < 3:  # Ollama reads [host/][namespace/]model from the right
        return ""
    first = parts[0]
    host = first.lower()
    if host in ("registry.ollama.ai", "ollama.com"):
        return ""
    return "Hugging Face (hf.co)" if host in ("hf.co", "huggingface.co") else f"the registry {first}"


_ADVICE = {
    "stalled": ("The download stopped making progress. Try again; it resumes from what Ollama "
                "kept."),
    "cancelled": "Starting it again resumes where it stopped.",
    "connection lost": (
        "Ollama stopped answering during the download. Make sure it is running "
        "('ollama serve') and try again; the download resumes from what Ollama kept."
    ),
    "disk full": (
        "Free some disk space where Ollama keeps its models, then try again; "
        "the download resumes where it stopped."
    ),
    "registry unreachable": (
        "The Ollama server could not reach the model registry: check that the machine "
        "running Ollama is online (and its HTTPS_PROXY, if it needs one), then try again; "
        "the download resumes where it stopped."
    ),
    "digest mismatch": (
        "The downloaded file did not match its checksum, so Ollama deleted it: try again, "
        "and the download starts over from the beginning (if it happens again, the registry "
        "or a proxy between it and Ollama is corrupting the file)."
    ),
    "update ollama": (
        "This model needs a newer version of Ollama: update Ollama "
        "(https://ollama.com/download), then pull it again."
    ),
    "unsupported": (
        "This model runs only on Ollama's MLX runtime (Apple Silicon Macs), which this "
        "Ollama server does not have: choose a GGUF build of the model instead."
    ),
    "permission": (
        "Ollama cannot write where it keeps its models: check that the user running "
        "'ollama serve' may write to that folder (OLLAMA_MODELS), then try again."
    ),
}
KINDS = (*_ADVICE, "router", "other")
"Every kind of PullFailed, each with its own advice (a fleet's router gives its own)."


class PullFailed(ContextPilotError):
    """The download of ``model`` ended without success; ``reason`` is Ollama's (redacted).
    ``auto``: a chat downloaded it because it was not installed."""

    def __init__(self, model: str, reason: str, *, auto: bool = False,
                 kind: str | None = None, advice: str | None = None) -> None:
        self.model = model
        self.reason = reason
        self.auto = auto
        self.kind = kind or _derive_kind(reason)
        "One of 'stalled', 'cancelled', 'connection lost', 'disk full', 'registry "
        "unreachable', 'digest mismatch', 'update ollama', 'unsupported', 'permission', "
        "'router' or 'other' (``KINDS``)."
        self.advice = advice or advice_for(self.kind, model)
        lead = (f"Model '{model}' is not installed, and downloading it failed ({reason})."
                if auto else f"Downloading model '{model}' failed ({reason}).")
        super().__init__(f"{lead} {self.advice}")


def advice_for(kind: str, model: str) -> str:
    """What to do after a download of ``model`` failed this way. Pulling it by hand is the
    advice only when nothing better is known: Ollama's own output may say more."""
    if kind in _ADVICE:
        return _ADVICE[kind]
    return (f"Try again; the download resumes where it stopped. If it keeps failing, pull it "
            f"in a terminal to see Ollama's own output: ollama pull {model}")


def _derive_kind(reason: str) -> str:
    # Only for callers that make a PullFailed without saying its kind (the library's own
    # translator always says it where it makes the error).
    text = reason.lower()
    if "no space left" in text or "disk full" in text or "not enough space" in text:
        return "disk full"
    for key in ("stalled", "cancelled", "connection lost", "digest mismatch"):
        if text.startswith(key):
            return key
    return "other"


class PullCancelled(PullFailed):
    """The pull was cancelled (``cancel_pull`` or every consumer left); the partial is kept.
    Not a failure: nothing went wrong, and the message says so."""

    def __init__(self, model: str) -> None:
        super().__init__(model, "cancelled", kind="cancelled")
        self.args = (f"The download of '{model}' was cancelled. What was downloaded is kept: "
                     f"{_ADVICE['cancelled'][0].lower()}{_ADVICE['cancelled'][1:]}",)


class NotAllowed(ContextPilotError, PermissionError):
    """A shared app's rules refuse ``action`` on ``model``."""

    def __init__(self, action: str, model: str | None = None, message: str | None = None) -> None:
        self.action = action
        self.model = model
        super().__init__(message or f"{action} is not allowed on this shared app.")


class InvalidRequest(ContextPilotError, ValueError):
    """The request could not be built (e.g. an image that cannot be read); nothing was sent."""


class NotAChatModel(InvalidRequest):
    """``model`` lacks Ollama's "completion" capability (embedding, image generation, decision
    models...); ``capabilities``: what it can do. Raised before a chat is sent, or for 400
    "does not support chat"."""

    def __init__(self, model: str, capabilities: tuple[str, ...] = ()) -> None:
        self.model = model
        self.capabilities = tuple(capabilities)
        super().__init__(f"{model} {_not_for_chat(model, self.capabilities)} To chat, choose "
                         f"a chat model.")


def _not_for_chat(model: str, capabilities: tuple[str, ...]) -> str:
    kind = non_chat_kind(capabilities)
    if kind == "embedding":
        return ("is an embedding model: it turns text into vectors (for search and "
                "similarity) and cannot chat. Use it through Ollama's /api/embed "
                "(ollama.embed in Python).")
    if kind == "image":
        return (f"is an image-generation model: it makes pictures from a prompt and cannot "
                f"chat. Use it with `ollama run {model}` or Ollama's /api/generate.")
    said = ", ".join(capabilities) or "nothing"
    return (f"is not a chat model: Ollama says it does {said}, and a chat needs "
            f"'completion'. Use it through the endpoint made for it (a decision model "
            f"answers at /v1/systemone).")


class SettingError(ContextPilotError, ValueError):
    """The environment variable ``name`` is set to something we cannot use; ``fix`` says
    what to set. ``value`` is None for a secret (CONTEXTPILOT_AUTH): it is never shown."""

    def __init__(self, name: str, value: object, fix: str) -> None:
        self.name = name
        self.value = value
        self.fix = fix
        shown = name if value is None else f"{name}={_show(value)}"
        super().__init__(f"{shown} is not valid. {fix}")


class OllamaError(ContextPilotError):
    """Ollama answered with an error we have no better class for."""

    def __init__(self, reason: str, status_code: int | None = None, model: str | None = None,
                 *, message: str | None = None):
        self.reason = reason
        self.status_code = status_code
        self.model = model
        hint = ""
        if status_code in (401, 403):
            hint = " Check OLLAMA_API_KEY (needed for ollama.com's hosted models)."
        super().__init__(message or f"Ollama reported an error: {reason}.{hint}")


class OllamaBusy(OllamaError):
    """503: Ollama's queue is full (OLLAMA_MAX_QUEUE); already retried a few times."""

    def __init__(self, reason: str, model: str | None = None) -> None:
        super().__init__(reason, 503, model, message=(
            f"Ollama is busy: too many requests are waiting (Ollama said: {reason}). Wait a "
            f"moment and send it again; if it keeps happening, run fewer requests at once or "
            f"let the server queue more (OLLAMA_MAX_QUEUE, OLLAMA_NUM_PARALLEL)."))


class ModelCrashed(OllamaError):
    """The model runner stopped (``mid_answer``: after some of the answer), or the model
    does not fit in memory (``out_of_memory``)."""

    def __init__(self, reason: str, model: str | None = None, *, status_code: int | None = 500,
                 out_of_memory: bool = False, mid_answer: bool = False) -> None:
        self.out_of_memory = out_of_memory
        self.mid_answer = mid_answer
        who = f"'{model}'" if model else "The model"
        advice = ("Choose a smaller model (fewer parameters or a smaller quantization) or a "
                  "smaller context length (num_ctx), then try again.")
        if out_of_memory:
            lead = f"{who} does not fit in the memory available to Ollama ({reason})."
        elif mid_answer:
            lead = (f"{who} stopped in the middle of its answer ({reason}); what it wrote so "
                    f"far is kept. Try again; if it happens again, it may be short of memory.")
        else:
            lead = (f"The model runner for {who} stopped unexpectedly ({reason}). This is "
                    f"usually a lack of memory.")
        super().__init__(reason, status_code, model, message=f"{lead} {advice}")


class CloudSignInRequired(OllamaError):
    """401: a cloud model, and this Ollama is not signed in to ollama.com (or, talking to
    ollama.com directly, no valid OLLAMA_API_KEY)."""

    def __init__(self, reason: str, model: str | None = None, *, signin_url: str = "",
                 direct: bool = False) -> None:
        self.signin_url = signin_url
        who = f"'{model}' runs on ollama.com" if model else "This request needs ollama.com"
        if direct:
            fix = ("Set OLLAMA_API_KEY to a key from https://ollama.com/settings/keys, "
                   "then try again.")
        else:
            link = f", or open {signin_url} to connect this machine" if signin_url else ""
            fix = f"Run `ollama signin` on the machine running Ollama{link}, then try again."
        super().__init__(reason, 401, model,
                         message=f"{who}, and Ollama is not signed in ({reason}). {fix}")


class CloudDisabled(OllamaError):
    """403: cloud models are switched off on this Ollama (OLLAMA_NO_CLOUD or its settings)."""

    def __init__(self, reason: str, model: str | None = None) -> None:
        who = f"'{model}' runs on ollama.com, but cloud" if model else "Cloud"
        super().__init__(reason, 403, model, message=(
            f"{who} models are switched off on this Ollama server ({reason}). Choose a local "
            f"model, or turn cloud models back on (unset OLLAMA_NO_CLOUD and restart Ollama)."))


def _show(name: object, limit: int = 60) -> str:
    """A safe, short rendering of a rejected name for messages."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


# -- the Hugging Face Hub (issue 11; kept at the end of the file for easy merges) ------------

class HubUnavailable(ContextPilotError, ConnectionError):
    """The Hugging Face Hub at ``endpoint`` cannot be used now (unreachable, slow, failing,
    or offline mode); nothing was downloaded."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(
            f"The Hugging Face Hub at {endpoint} cannot be used now: {reason}. Check the "
            f"connection (or HF_ENDPOINT) and try again; installed models still work.")


class HubNotFound(ContextPilotError, LookupError):
    """The Hub has no such repository (``reason`` "missing"; the Hub answers 401 for a
    private one too), no access ("gated"), no GGUF file ("no gguf"), or no ``quant``."""

    def __init__(self, repo: str, *, reason: str = "missing", quant: str | None = None,
                 available: tuple[str, ...] = ()) -> None:
        self.repo = repo
        self.reason = "no quant" if quant else reason
        self.quant = quant
        self.available = available
        if quant:
            have = ", ".join(available[:12]) or "none Ollama can pull"
            msg = (f"hf.co/{repo} has no {quant} quantisation. Choose one it has: {have}.")
        elif reason == "no gguf":
            msg = (f"hf.co/{repo} has no GGUF files, so Ollama cannot run it. Search for a "
                   f"GGUF version of it (the repository names usually end in -GGUF).")
        elif reason == "gated":
            msg = (f"hf.co/{repo} is gated: accept its terms on huggingface.co and log in "
                   f"(HF_TOKEN) to use it.")
        else:
            msg = (f"No repository hf.co/{repo} is visible on the Hugging Face Hub: it does "
                   f"not exist or it is private. Check the name (user/repo).")
        super().__init__(msg)

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0])

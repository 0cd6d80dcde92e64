"""contextpilot: chat with local Ollama models; a missing model is downloaded, with progress.

The one library behind the Gradio app, the notebook and the CLI. Long operations are plain
generators of typed values (``PullProgress``, ``ContentDelta``, ``ThinkingDelta``, ``ChatDone``);
errors are the exceptions in ``contextpilot.errors``, each with a message that says what to do.

Where each behaviour lives; imports run down this list, never up (a test checks it):

front ends    ``ui/`` (the Gradio app), ``cli`` (``python -m contextpilot``), ``console``
              (tqdm bars and printed chats for scripts and notebooks)
services      ``fleet/`` (several Ollama hosts used as one: routing, pulls per host,
              failover), ``chat`` (an answer, auto-pulling a missing model), ``fit/`` (what a model
              needs and whether this machine has it: sizes, memory, the verdict, make-room),
              ``pull/`` (the pull engine: shared pulls, progress, stall limit, disk guard),
              ``hub/`` (Hugging Face GGUF search and quantisations), ``models`` (what one
              host has and runs), ``policy`` (a shared app's rules), ``autostart``
the talker    ``_client`` (the one place that talks to Ollama) with ``_errortable`` (the one
              error table); ``machine`` (this machine's disk, memory and GPU)
pure values   ``names`` (model names, parsed once), ``errors``, ``types``, ``units`` (one
              size and duration formatter), ``settings`` (the one settings reader),
              ``netaddr``, ``cancel``

This module holds no logic: it re-exports the public API (``__all__``).
"""

import logging

# The library never prints: without a handler of the application's, Python's last resort
# would write our warnings (a failed pull) to stderr next to the front end's own message.
logging.getLogger("contextpilot").addHandler(logging.NullHandler())

from .autostart import Autostart, AutostartResult, ensure_ollama
from .cancel import CancelToken
from .chat import THINK_LEVELS, chat_stream, think_levels
from .errors import (
    CloudDisabled,
    CloudSignInRequired,
    ContextPilotError,
    HubNotFound,
    HubUnavailable,
    InvalidModelName,
    InvalidRequest,
    ModelCrashed,
    ModelNotFound,
    NoHostAvailable,
    NotAChatModel,
    NotAllowed,
    OllamaBusy,
    OllamaError,
    OllamaUnavailable,
    PullCancelled,
    PullFailed,
    SettingError,
)
from .fit import check_fit, model_files
from .fleet import Fleet
from .hub import search_models
from .models import (
    delete_model,
    list_models,
    load_model,
    model_details,
    model_exists,
    recommended_models,
    running_models,
    server_status,
    unload_model,
)
from .names import ModelName, parse_name, same_model
from .policy import AccessPolicy
from .pull import active_pulls, cancel_pull, is_pulling, pull_model, recent_pulls, throttle
from .units import format_duration, format_size
from .types import (
    ChatDone,
    ChatEvent,
    ContentDelta,
    FitVerdict,
    HostStatus,
    HubModel,
    HubQuant,
    ModelDetails,
    ModelRecommendation,
    ModelInfo,
    PullOutcome,
    PullProgress,
    Routed,
    RunningModel,
    ServerStatus,
    ThinkingDelta,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # The tqdm helpers load tqdm only when asked for: the core never imports a front end.
    if name in ("pull_with_progress", "print_chat"):
        from . import console

        return getattr(console, name)
    raise AttributeError(f"module 'contextpilot' has no attribute {name!r}")

__all__ = [
    "AccessPolicy",
    "Autostart",
    "AutostartResult",
    "CancelToken",
    "ChatDone",
    "ChatEvent",
    "CloudDisabled",
    "CloudSignInRequired",
    "ContentDelta",
    "ContextPilotError",
    "FitVerdict",
    "Fleet",
    "HostStatus",
    "HubModel",
    "HubNotFound",
    "HubQuant",
    "HubUnavailable",
    "InvalidModelName",
    "InvalidRequest",
    "ModelCrashed",
    "ModelDetails",
    "ModelInfo",
    "ModelName",
    "ModelNotFound",
    "ModelRecommendation",
    "NoHostAvailable",
    "NotAChatModel",
    "NotAllowed",
    "OllamaBusy",
    "OllamaError",
    "OllamaUnavailable",
    "PullCancelled",
    "PullFailed",
    "PullOutcome",
    "PullProgress",
    "Routed",
    "RunningModel",
    "ServerStatus",
    "SettingError",
    "THINK_LEVELS",
    "ThinkingDelta",
    "active_pulls",
    "cancel_pull",
    "chat_stream",
    "check_fit",
    "delete_model",
    "ensure_ollama",
    "format_duration",
    "format_size",
    "is_pulling",
    "list_models",
    "load_model",
    "model_details",
    "model_exists",
    "model_files",
    "parse_name",
    "print_chat",
    "pull_model",
    "pull_with_progress",
    "recent_pulls",
    "recommended_models",
    "running_models",
    "same_model",
    "search_models",
    "server_status",
    "think_levels",
    "throttle",
    "unload_model",
]

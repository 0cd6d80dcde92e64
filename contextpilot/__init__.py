"""contextpilot: chat with local Ollama models; a missing model is downloaded, with progress.

The one library behind the Gradio app, the notebook and the CLI. Long operations are plain
generators of typed values (``PullProgress``, ``ContentDelta``, ``ThinkingDelta``, ``ChatDone``);
errors are the exceptions in ``contextpilot.errors``, each with a message that says what to do.
"""

import logging

# The library never prints: without a handler of the application's, Python's last resort
# would write our warnings (a failed pull) to stderr next to the front end's own message.
logging.getLogger("contextpilot").addHandler(logging.NullHandler())

from .autostart import Autostart, AutostartResult, ensure_ollama
from .cancel import CancelToken
from .chat import THINK_LEVELS, chat_stream, think_levels
from .hardware import check_fit
from .errors import (
    CloudDisabled,
    CloudSignInRequired,
    ContextPilotError,
    InvalidModelName,
    InvalidRequest,
    ModelCrashed,
    ModelNotFound,
    NotAllowed,
    OllamaBusy,
    OllamaError,
    OllamaUnavailable,
    PullCancelled,
    PullFailed,
)
from .models import (
    delete_model,
    list_models,
    load_model,
    model_details,
    model_exists,
    running_models,
    server_status,
    unload_model,
)
from .names import ModelName, parse_name, same_model
from .policy import AccessPolicy
from .progress import throttle
from .pull import active_pulls, cancel_pull, is_pulling, pull_model, recent_pulls
from .types import (
    ChatDone,
    ChatEvent,
    ContentDelta,
    FitVerdict,
    ModelDetails,
    ModelInfo,
    PullOutcome,
    PullProgress,
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
    "InvalidModelName",
    "InvalidRequest",
    "ModelCrashed",
    "ModelDetails",
    "ModelInfo",
    "ModelName",
    "ModelNotFound",
    "NotAllowed",
    "OllamaBusy",
    "OllamaError",
    "OllamaUnavailable",
    "PullCancelled",
    "PullFailed",
    "PullOutcome",
    "PullProgress",
    "RunningModel",
    "ServerStatus",
    "THINK_LEVELS",
    "ThinkingDelta",
    "active_pulls",
    "cancel_pull",
    "chat_stream",
    "check_fit",
    "delete_model",
    "ensure_ollama",
    "is_pulling",
    "list_models",
    "load_model",
    "model_details",
    "model_exists",
    "parse_name",
    "print_chat",
    "pull_model",
    "pull_with_progress",
    "recent_pulls",
    "running_models",
    "same_model",
    "server_status",
    "think_levels",
    "throttle",
    "unload_model",
]

"""The one reader of settings from the environment: every CONTEXTPILOT_* variable, and the
few others ContextPilot honours (OLLAMA_HOST, OLLAMA_MODELS, HF_ENDPOINT, GRADIO_*...).

A value is read when it is used, never at import, so ``import contextpilot`` works whatever
the environment holds and a test (or a notebook) can change a setting between two calls.

- Flags: ``1/true/yes/on`` and ``0/false/no/off``, in any case; spaces around are ignored
  and an empty value means the default.
- Seconds: a number above 0 and at most a day (``3``, ``2.5``); empty means the default.
- CONTEXTPILOT_REGISTRY_URL: an http(s) address; CONTEXTPILOT_ALLOWED_MODELS: model names,
  comma separated; CONTEXTPILOT_AUTH: ``user:password``.
- Anything else raises one ``SettingError`` naming the variable, its value and what to set.

``check()`` reads every setting at once: front ends call it first, so a typo is one message
at start (the CLI and ``python app.py`` print it and exit 1) rather than a failure later.
The defaults live in the tables below, and nowhere else.
"""

from __future__ import annotations

import math
import os
from typing import Optional

from urllib.parse import urlsplit

from .errors import InvalidModelName, SettingError
from .names import parse_name

DEFAULT_OLLAMA_HOST = "http://localhost:11434"
"Where Ollama is when OLLAMA_HOST (and the caller) say nothing."
ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")

FLAGS: dict[str, bool] = {
    "CONTEXTPILOT_AUTOSTART": True,        # start a local `ollama serve` when nothing answers
    "CONTEXTPILOT_PRELOAD": True,          # load a model into memory after its download
    "CONTEXTPILOT_DISK_CHECK": True,       # stop a pull that cannot fit the disk
    "CONTEXTPILOT_REGISTRY_LOOKUP": True,  # ask the registry / the Hub for a model's size
    "CONTEXTPILOT_SIZE_PROBE": True,       # else start a pull and stop it once the size shows
    "CONTEXTPILOT_ALLOW_DELETE": False,    # shared app: visitors may delete models
    "CONTEXTPILOT_ALLOW_UNLOAD": False,    # ... unload them from memory
    "CONTEXTPILOT_ALLOW_CANCEL": False,    # ... cancel a download
}
SECONDS: dict[str, float] = {
    "CONTEXTPILOT_CONNECT_TIMEOUT": 3.0,   # connecting to Ollama must fail fast
    "CONTEXTPILOT_READ_TIMEOUT": 30.0,     # a quick call (list, show, ps) that hangs
    "CONTEXTPILOT_STALL_TIMEOUT": 120.0,   # a download with no new data for this long
}
MAX_SECONDS = 86_400
"The longest timeout accepted: a day (longer ones overflow the clock of a socket or a wait)."
AUTH = "CONTEXTPILOT_AUTH"
URLS: dict[str, str] = {
    "CONTEXTPILOT_REGISTRY_URL": "https://registry.ollama.ai",  # sizes of default-host names
}
ALLOWED_MODELS = "CONTEXTPILOT_ALLOWED_MODELS"
AUTH_FORM = "user:password (both parts non-empty; the password may contain ':')"


def text(name: str, default: str = "") -> str:
    """The variable's value without surrounding spaces; ``default`` when unset or empty."""
    return os.environ.get(name, "").strip() or default


def flag(name: str) -> bool:
    """One of the FLAGS: on or off, else SettingError.

    >>> os.environ["CONTEXTPILOT_PRELOAD"] = " Off "; flag("CONTEXTPILOT_PRELOAD")
    False
    >>> del os.environ["CONTEXTPILOT_PRELOAD"]; flag("CONTEXTPILOT_PRELOAD")
    True
    """
    default = FLAGS[name]  # a KeyError here is a bug of ours: a setting missing from FLAGS
    value = text(name).lower()
    if not value:
        return default
    if value in ON or value in OFF:
        return value in ON
    raise SettingError(name, os.environ[name], (
        f"Set it to 1, true, yes or on, or to 0, false, no or off (in any case), or unset it "
        f"for the default ({'on' if default else 'off'})."))


def is_on(name: str) -> bool:
    """A variable that is not ours (GRADIO_SHARE): on for an on-spelling, else off, never an
    error (the program that owns it decides what else its value means)."""
    return text(name).lower() in ON


def seconds(name: str) -> float:
    """One of the SECONDS: a finite number above 0, else SettingError.

    >>> os.environ["CONTEXTPILOT_STALL_TIMEOUT"] = "7.5"; seconds("CONTEXTPILOT_STALL_TIMEOUT")
    7.5
    >>> del os.environ["CONTEXTPILOT_STALL_TIMEOUT"]
    """
    default = SECONDS[name]
    raw = text(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SettingError(name, os.environ[name], (
            f"Set it to a number of seconds above 0, such as 2.5, or unset it for the "
            f"default ({default:g})."))
    if value > MAX_SECONDS:  # a socket or a wait refuses ~1e10 s (OverflowError), mid-call
        raise SettingError(name, os.environ[name], (
            f"Set it to a number of seconds at most {MAX_SECONDS:,} (a day), or unset it for "
            f"the default ({default:g})."))
    return value


def url(name: str) -> str:
    """One of the URLS: an http(s) address, without a trailing '/'; else SettingError."""
    default = URLS[name]
    value = text(name, default).rstrip("/")
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        ok = ok and (parts.port is None or parts.port > 0)  # a bad port raises ValueError
    except ValueError:
        ok = False
    if not ok:
        raise SettingError(name, os.environ.get(name), (
            f"Set it to an address such as https://registry.example.com, or unset it for "
            f"the default ({default})."))
    return value


def registry_url() -> str:
    """The registry for names on the default host: CONTEXTPILOT_REGISTRY_URL, else Ollama's."""
    return url("CONTEXTPILOT_REGISTRY_URL")


DEFAULT_HUB = "https://huggingface.co"


def hub_endpoint() -> str:
    """The Hugging Face Hub: HF_ENDPOINT, else huggingface.co (read at call time, unlike
    huggingface_hub, which reads it once at import)."""
    return text("HF_ENDPOINT", DEFAULT_HUB).rstrip("/")


def model_names(name: str) -> list[str]:
    """A comma list of model names (CONTEXTPILOT_ALLOWED_MODELS) as written; [] when unset.
    A name that cannot be a model name is a SettingError."""
    names = [n.strip() for n in text(name).split(",") if n.strip()]
    for n in names:
        try:
            parse_name(n)
        except InvalidModelName as exc:
            raise SettingError(name, os.environ[name], (
                f"{n!r} is not a model name ({exc.reason}). Set it to a comma list such as "
                f"llama3.2,qwen3:0.6b, or unset it.")) from None
    return names


def parse_auth(value: Optional[str], name: str = AUTH) -> Optional[tuple[str, str]]:
    """"user:pass" -> ("user", "pass") for a login; None when empty. The password may hold
    ':'; an empty user or password, or no ':', is a SettingError that never shows the value.

    >>> parse_auth("ada:s3:cret"), parse_auth("  "), parse_auth(None)
    (('ada', 's3:cret'), None, None)
    """
    if value is None or not value.strip():
        return None
    user, sep, password = value.strip().partition(":")
    if not sep or not user or not password:
        raise SettingError(name, None, f"Set it to {AUTH_FORM}, or unset it for no login.")
    return user, password


def auth() -> Optional[tuple[str, str]]:
    """CONTEXTPILOT_AUTH as (user, password), or None when it is not set."""
    return parse_auth(os.environ.get(AUTH))


def check() -> None:
    """Read every setting now; raise the first SettingError. Nothing else happens."""
    for name in FLAGS:
        flag(name)
    for name in SECONDS:
        seconds(name)
    for name in URLS:
        url(name)
    model_names(ALLOWED_MODELS)
    auth()


__all__ = ["ALLOWED_MODELS", "AUTH", "DEFAULT_OLLAMA_HOST", "FLAGS", "OFF", "ON", "SECONDS",
           "URLS", "auth", "check", "flag", "hub_endpoint", "is_on", "model_names",
           "parse_auth", "registry_url", "seconds", "text", "url"]

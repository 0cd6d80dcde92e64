"""The one reader of settings from the environment: every CONTEXTPILOT_* variable, and the
few others ContextPilot honours (OLLAMA_HOST, OLLAMA_MODELS, HF_ENDPOINT, GRADIO_*...).

A value is read when it is used, never at import, so ``import contextpilot`` works whatever
the environment holds and a test (or a notebook) can change a setting between two calls.

- Flags: ``1/true/yes/on`` and ``0/false/no/off``, in any case; spaces around are ignored
  and an empty value means the default.
- Seconds: a number above 0 and at most a day (``3``, ``2.5``); empty means the default.
- CONTEXTPILOT_REGISTRY_URL: an http(s) address; CONTEXTPILOT_ALLOWED_MODELS: model names,
  comma separated; CONTEXTPILOT_AUTH: ``user:password``.
- OLLAMA_HOSTS: several Ollama hosts used as one, comma separated, each ``name=url`` or a
  bare url (named by its ``host:port``).
- Anything else raises one ``SettingError`` naming the variable, its value and what to set.

``check()`` reads every setting at once: front ends call it first, so a typo is one message
at start (the CLI and ``python app.py`` print it and exit 1) rather than a failure later.
The defaults live in the tables below, and nowhere else.
"""

from __future__ import annotations

import math
import os
import re
from typing import Optional, Sequence

from urllib.parse import urlsplit

from .errors import InvalidModelName, SettingError
from .names import parse_name
from .netaddr import join_host_port

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


HOSTS = "OLLAMA_HOSTS"
HOSTS_FORM = ("a comma list of name=url or url, e.g. "
              "gpu1=http://10.0.0.5:11434,gpu2=http://10.0.0.6:11434")
RESERVED_HOST_NAMES = ("all", "auto")
"Words that mean every host and the router's choice: no host may be called so."
_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
OLLAMA_PORT = 11434


def hosts() -> list[tuple[str, str]]:
    """OLLAMA_HOSTS as (name, address) pairs, in order; [] when it is unset (then OLLAMA_HOST
    is a fleet of one). A malformed entry or a name used twice is a SettingError naming it.

    >>> os.environ["OLLAMA_HOSTS"] = "gpu1=http://10.0.0.5:11434, 10.0.0.6"; hosts()
    [('gpu1', 'http://10.0.0.5:11434'), ('10.0.0.6:11434', '10.0.0.6')]
    >>> del os.environ["OLLAMA_HOSTS"]; hosts()
    []
    """
    pairs: list[tuple[str, str]] = []
    for entry in (e.strip() for e in text(HOSTS).split(",")):
        if not entry:
            continue  # "a,b," is a list of two
        label, sep, address = entry.partition("=")
        name = label.strip() if sep else host_port(entry)
        address = address.strip() if sep else entry
        problem = host_problem(name, address, [n for n, _ in pairs])
        if problem:
            raise SettingError(HOSTS, os.environ[HOSTS], (
                f"The entry {entry[:120]!r} {problem}. Set it to {HOSTS_FORM}."))
        pairs.append((name, address))
    return pairs


def host_problem(name: str, address: str, taken: Sequence[str] = ()) -> str:
    """What is wrong with a fleet host (a phrase to follow "the entry ..."), "" if nothing.
    A name of one's own is letters, digits, '-', '_' and '.' (no '..'); a bare address is
    named by its ``host:port``.

    >>> host_problem("gpu1", "http://10.0.0.5:11434"), host_problem("a b", "x")
    ('', "has a name that is not letters, digits, '-', '_' or '.'")
    >>> host_problem("gpu1", "ftp://x"), host_problem("All", "x")
    ('has an address that is not http(s)://host:port', "is called 'all', which means every host")
    """
    if not address:
        return "has no address"
    derived = host_port(address)
    if not derived:
        return "has an address that is not http(s)://host:port"
    if name != derived:
        if not _HOST_NAME.fullmatch(name):
            return "has a name that is not letters, digits, '-', '_' or '.'"
        if ".." in name or set(name) == {"."}:
            return "has a name with '..' in it"
    if name.lower() in RESERVED_HOST_NAMES:
        meaning = "every host" if name.lower() == "all" else "the router's choice"
        return f"is called {name.lower()!r}, which means {meaning}"
    if name.lower() in (t.lower() for t in taken):
        return f"names {name!r} a second time (each host needs a name of its own)"
    return ""


def host_port(address: str) -> str:
    """The ``host:port`` an address reaches, with Ollama's default port (11434, or 80/443
    for an explicit http:// / https://); "" when it is not an Ollama address.

    >>> host_port("10.0.0.6"), host_port("https://box.lan"), host_port("http://[::1]:9")
    ('10.0.0.6:11434', 'box.lan:443', '[::1]:9')
    >>> host_port("ftp://box"), host_port("http://"), host_port("box:99999")
    ('', '', '')
    """
    scheme, sep, rest = address.strip().partition("://")
    if not sep:
        scheme, rest = "", address.strip()
    if scheme.lower() not in ("", "http", "https") or not rest or any(c.isspace() for c in rest):
        return ""
    default = {"": OLLAMA_PORT, "http": 80, "https": 443}[scheme.lower()]
    try:
        parts = urlsplit(f"http://{rest}")
        port = parts.port or default
    except ValueError:  # a port that is not a number or out of range, an unclosed bracket
        return ""
    if not parts.hostname or parts.username is not None:
        return ""
    return join_host_port(parts.hostname, port)


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
    hosts()


__all__ = ["ALLOWED_MODELS", "AUTH", "DEFAULT_OLLAMA_HOST", "FLAGS", "HOSTS", "OFF", "ON",
           "RESERVED_HOST_NAMES", "SECONDS", "URLS", "auth", "check", "flag", "host_port",
           "host_problem", "hosts", "hub_endpoint", "is_on", "model_names", "parse_auth",
           "registry_url", "seconds", "text", "url"]

"""Who may do what: the rules of a shared app (a public link, a non-loopback bind, a Space).

A private app (bound to 127.0.0.1 and reached from this machine) allows everything. A shared
one limits downloads to an allowlist (CONTEXTPILOT_ALLOWED_MODELS, else the models installed
when the allowlist is first needed; cloud models only when named there) and keeps delete,
unload and cancel for the operator unless CONTEXTPILOT_ALLOW_DELETE / _UNLOAD / _CANCEL=1.
Every check raises NotAllowed, whose message says why. The Ollama host is operator
configuration, never a visitor's input.

Whether an app is shared is decided twice, and either says so: when it is built (launch
arguments, environment, a Space, a hosted notebook), and again for every request from what
the request and the running server show (a ``Visit``: the peer, proxy headers, the Host,
the socket it arrived on, how the server was launched), because code we do not control may
launch or mount the app after it was built. When unsure, it is shared.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Union
from urllib.parse import urlsplit

from . import models, netaddr, settings
from .errors import NotAllowed
from .names import ModelName, listed_key, parse_name
from .types import ModelInfo

MAX_MESSAGE_CHARS = 100_000
"The longest chat message accepted (about 25k tokens); larger ones are refused."
MAX_FILES = 8
MAX_FILE_BYTES = 20 * 1024 * 1024
"The largest attachment read from disk (Gradio's own limit is only set by some launchers)."
ACTIONS = ("delete", "unload", "cancel")


def _flag(name: str) -> bool:
    # ours (CONTEXTPILOT_ALLOW_*) must be a flag spelling; another program's (GRADIO_SHARE)
    # is on only when spelled on: see contextpilot.settings
    return settings.flag(name) if name in settings.FLAGS else settings.is_on(name)


def is_loopback_bind(server_name: Optional[str]) -> bool:
    """True for a bind address only this machine can reach.

    >>> is_loopback_bind("127.0.0.1"), is_loopback_bind("0.0.0.0"), is_loopback_bind(None)
    (True, False, True)
    """
    return not server_name or netaddr.is_loopback(server_name)  # None: Gradio's 127.0.0.1


# Headers a reverse proxy, tunnel or CDN adds: their presence means the request was relayed.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
                 "x-forwarded-prefix", "x-forwarded-port", "x-real-ip", "x-original-host",
                 "cf-connecting-ip", "true-client-ip", "fly-client-ip", "x-client-ip",
                 "x-cluster-client-ip", "via")


def _loopback_host(value: Optional[str]) -> bool:
    """True for 'localhost', '127.0.0.1:7860', '[::1]:80' (a Host header or an address).

    >>> [_loopback_host(h) for h in ("localhost:7860", "[::1]:80", "::1", "evil.example", "")]
    [True, True, True, False, False]
    """
    return netaddr.is_loopback(value)


def hosted_environment() -> Optional[str]:
    """The hosted place this process runs in (a Space, Colab, Kaggle, SageMaker...), else None;
    there a page is reached through the host's proxy, so an app is always shared."""
    env = os.environ
    if env.get("SPACE_ID") or env.get("SYSTEM") == "spaces":
        return "a Hugging Face Space"
    if "google.colab" in sys.modules or env.get("COLAB_RELEASE_TAG") or env.get("COLAB_GPU"):
        return "Google Colab"
    if env.get("KAGGLE_KERNEL_RUN_TYPE") or env.get("KAGGLE_URL_BASE"):
        return "Kaggle"
    if os.path.exists("/home/ec2-user/SageMaker") or env.get("SM_CURRENT_HOST"):
        return "SageMaker"
    for name, place in (("PAPERSPACE_NOTEBOOK_REPO_ID", "Paperspace"),
                        ("DATABRICKS_RUNTIME_VERSION", "Databricks"),
                        ("LIGHTNING_CLOUD_PROJECT_ID", "Lightning"),
                        ("DEEPNOTE_PROJECT_ID", "Deepnote")):
        if env.get(name):
            return place
    return None


def served_by_environment(share: bool = False, server_name: Optional[str] = None) -> bool:
    """Shared by launch arguments or environment: a share link, GRADIO_SHARE, a bind beyond
    loopback (the argument, else GRADIO_SERVER_NAME), GRADIO_ROOT_PATH (behind a proxy), or a
    hosted environment."""
    server_name = server_name or settings.text("GRADIO_SERVER_NAME")
    return bool(share or _flag("GRADIO_SHARE") or not is_loopback_bind(server_name)
                or settings.text("GRADIO_ROOT_PATH") or hosted_environment())


def listens_beyond_loopback(port: Optional[int]) -> bool:
    """True unless every socket this process listens on at ``port`` is a loopback one (an
    app mounted into uvicorn on 0.0.0.0 never passed through launch()). Unknown: True."""
    if not port:
        return True
    try:
        import psutil

        binds = [c.laddr.ip for c in psutil.Process().net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
    except Exception:  # no psutil answer: we cannot tell, so it is shared
        return True
    return not binds or not all(_loopback_host(ip) for ip in binds)


@dataclass(frozen=True)
class Visit:
    """What one request shows about how it reached the app (filled in by the front end).

    ``client``: the peer address; ``headers``: lower-case names; ``port``: the server port
    the connection arrived on; ``served``: the running server says it is public (a share
    link, a non-loopback bind, a proxy root path, a hosted notebook); ``scheme``: the
    request's (with the Host, the app's own origin as this request reached it)."""

    client: Optional[str] = None
    headers: Mapping[str, str] = field(default_factory=dict)
    port: Optional[int] = None
    root_path: str = ""
    served: bool = False
    scheme: str = "http"

    def why_shared(self) -> Optional[str]:
        """The first reason this request counts as a visitor's, else None (worked out once
        per Visit: the front end keeps one per request, and policy checks ask many times)."""
        if "_why" not in self.__dict__:
            object.__setattr__(self, "_why", self._reason())
        return self.__dict__["_why"]

    def _reason(self) -> Optional[str]:
        # in order of cost: the socket table is read last
        h = {k.lower(): v for k, v in self.headers.items()}
        if self.served or served_by_environment():
            return "the server is public"
        if not _loopback_host(self.client):
            return "the request came from another machine"
        if any(name in h for name in PROXY_HEADERS):
            return "the request came through a proxy"
        if not _loopback_host(h.get("host")):
            return "the request named another host"
        origin = h.get("origin", "")  # "null" too: a sandboxed frame or a file:// page
        fetched_from = h.get("sec-fetch-site", "same-origin")
        if (origin and not _loopback_host(origin.partition("://")[2])) \
                or fetched_from == "cross-site":
            return "the request came from another site"
        # another page of this machine (any other port of 127.0.0.1 or localhost) is a
        # visitor: the operator's page is the app's own origin
        if (origin and not same_origin(origin, f"{self.scheme}://{h.get('host', '')}")) \
                or fetched_from not in ("same-origin", "none"):
            return "the request came from another page on this machine"
        if self.root_path:
            return "the app is mounted behind a proxy path"
        if listens_beyond_loopback(self.port):
            return "the server listens beyond this machine"
        return None


def same_origin(origin: str, own: str) -> bool:
    """Two origins are one: the same scheme, host and port (a missing port is the scheme's).

    >>> same_origin("http://127.0.0.1:7860", "http://127.0.0.1:7860")
    True
    >>> [same_origin(o, "http://127.0.0.1:7860") for o in (
    ...     "http://127.0.0.1:8000", "http://localhost:7860", "https://127.0.0.1:7860")]
    [False, False, False]
    >>> same_origin("HTTP://[::1]", "http://[::1]:80")
    True
    """
    def parts(text: str) -> Optional[tuple[str, str, int]]:
        try:
            u = urlsplit(text.strip())
            port = u.port or {"http": 80, "https": 443}.get(u.scheme.lower(), 0)
        except ValueError:
            return None
        return (u.scheme.lower(), (u.hostname or "").lower(), port) if u.hostname else None

    mine = parts(own)
    return mine is not None and parts(origin) == mine


UNKNOWN_VISIT = Visit(served=True)
"A request the front end could not describe: treated as a visitor's."


def _names(names: Iterable[Union[str, ModelName]]) -> dict[str, ModelName]:
    parsed = [parse_name(n) for n in names]
    return {n.key: n for n in parsed}


class AccessPolicy:
    """The rules every handler applies before it does anything.

    ``shared``: True, the shared rules always; False, the operator's own app, with every
    check off wherever it is served (an explicit choice that wins over everything else);
    None (the default), decided for every request by ``visit`` (how it reached the app),
    and without a ``visit`` to ask, shared: when the app cannot tell, it is shared."""

    def __init__(self, shared: Optional[bool] = None,
                 allowed_models: Optional[Iterable[str]] = None,
                 allow_delete: bool = False, allow_unload: bool = False,
                 allow_cancel: bool = False, host: Optional[str] = None,
                 visit: Optional[Callable[[], Optional[Visit]]] = None) -> None:
        self._shared = shared
        self.visit = visit
        self.host = host
        self.installed: Optional[Callable[[], list[ModelInfo]]] = None
        """What is installed when the app has several hosts: the models on any of them
        (None: the models installed at ``host``), for the implicit allowlist and cloud."""
        self._explicit = allowed_models is not None
        self._allowed: Optional[dict[str, ModelName]] = (  # key -> the name
            None if allowed_models is None else _names(allowed_models))
        self._actions = {"delete": allow_delete, "unload": allow_unload, "cancel": allow_cancel}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, share: bool = False, server_name: Optional[str] = None,
                 host: Optional[str] = None) -> "AccessPolicy":
        """Shared when asked to share, bound beyond loopback, behind a proxy path, on a Space
        or in a hosted notebook; otherwise decided per request (``shared=None``)."""
        shared = True if served_by_environment(share, server_name) else None
        allowed = settings.model_names(settings.ALLOWED_MODELS) or None
        return cls(shared=shared, allowed_models=allowed,
                   allow_delete=_flag("CONTEXTPILOT_ALLOW_DELETE"),
                   allow_unload=_flag("CONTEXTPILOT_ALLOW_UNLOAD"),
                   allow_cancel=_flag("CONTEXTPILOT_ALLOW_CANCEL"), host=host)

    @property
    def shared(self) -> bool:
        """Shared when built so; else, unless explicitly private, when the current request
        (``visit()``) is a visitor's or there is no way to ask."""
        if self._shared is not None:
            return self._shared
        visit = self.visit() if self.visit is not None else None
        return visit is None or visit.why_shared() is not None

    @property
    def explicit(self) -> bool:
        """True when the operator fixed the mode (``shared`` True or False) when building."""
        return self._shared is not None

    def allowed_models(self) -> Optional[frozenset[str]]:
        """The keys of the models visitors may download (None: any, on a private app)."""
        if not self.shared:
            return None
        return frozenset(self._allowlist())

    def allowed_names(self) -> list[str]:
        """The models visitors may download, as names to show (empty on a private app)."""
        if not self.shared:
            return []
        return sorted(n.display for n in self._allowlist().values()  # see may_pull for cloud
                      if self._explicit or not n.is_cloud)

    def _allowlist(self) -> dict[str, ModelName]:
        with self._lock:
            if self._allowed is None:  # first need: the models installed now, but not the
                # ones Ollama says run elsewhere (a cloud model copied to a plain name)
                self._allowed = _names(m.name for m in self._installed_models()
                                       if not m.is_cloud)
            return self._allowed

    def may_pull(self, name: Union[str, ModelName]) -> bool:
        allowed = self.allowed_models()
        if allowed is None:
            return True
        n = parse_name(name)
        if n.is_cloud and not self._explicit:  # installed stubs do not make cloud use free
            return False
        return n.key in allowed

    def check_pull(self, name: Union[str, ModelName]) -> None:
        parsed = parse_name(name)
        display = parsed.display
        if not self.may_pull(parsed):
            raise NotAllowed("download", display,
                             f"Downloads of '{display}' are not allowed on this shared app. "
                             f"Choose one of the models offered, or ask the operator to add it "
                             f"to CONTEXTPILOT_ALLOWED_MODELS.")

    def is_cloud(self, name: Union[str, ModelName]) -> bool:
        """The model runs on ollama.com: its name says so, or Ollama's installed list says it
        runs on a remote host (``remote_host``: a cloud model pulled, or copied to any name
        with ``ollama cp``). Asks the installed list only (never /api/show, which would make
        Ollama ask ollama.com); raises OllamaUnavailable when Ollama does not answer."""
        n = parse_name(name)
        if n.is_cloud:
            return True
        if self.installed is None:
            have = models.installed(n, self.host)
        else:  # several hosts: a copy on any of them
            have = next((m for m in self.installed() if listed_key(m.name) == n.key), None)
        return have is not None and have.is_cloud

    def _installed_models(self) -> list[ModelInfo]:
        return self.installed() if self.installed is not None else models.list_models(self.host)

    def may_chat(self, name: Union[str, ModelName]) -> bool:
        """Visitors may use ``name``: anything on a private app; on a shared one, a model
        that runs here, or a cloud model CONTEXTPILOT_ALLOWED_MODELS names."""
        n = parse_name(name)
        if not self.shared or (self._explicit and n.key in self._allowlist()):
            return True
        return not self.is_cloud(n)

    def check_chat(self, name: Union[str, ModelName]) -> None:
        """A cloud model runs on the operator's ollama.com account: on a shared app only when
        CONTEXTPILOT_ALLOWED_MODELS names it, whatever its name (see ``is_cloud``)."""
        n = parse_name(name)
        if not self.may_chat(n):
            raise NotAllowed("chat", n.display,
                             f"Cloud model '{n.display}' is not allowed on this shared app: it "
                             f"runs on the operator's ollama.com account. Choose a local model, "
                             f"or ask the operator to add it to CONTEXTPILOT_ALLOWED_MODELS.")

    def may(self, action: str) -> bool:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        return not self.shared or self._actions[action]

    def check_action(self, action: str, name: Union[str, ModelName, None] = None) -> None:
        display = parse_name(name).display if name else None
        if not self.may(action):
            what = f"{action.capitalize()} of '{display}'" if display else action.capitalize()
            raise NotAllowed(action, display,
                             f"{what} is not allowed on this shared app: it is an operator "
                             f"action (CONTEXTPILOT_ALLOW_{action.upper()}=1 enables it).")

    def check_message(self, text: object, files: int = 0) -> None:
        if not isinstance(text, str):
            raise NotAllowed("chat", message="The message must be text.")
        if len(text) > MAX_MESSAGE_CHARS:
            raise NotAllowed("chat", message=(
                f"The message is too long ({len(text):,} characters; the limit is "
                f"{MAX_MESSAGE_CHARS:,}). Shorten it and send it again."))
        if files > MAX_FILES:
            raise NotAllowed("chat", message=f"Attach at most {MAX_FILES} files to a message.")

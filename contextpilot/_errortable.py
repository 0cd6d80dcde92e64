"""The one error table: every ollama/httpx/pydantic error becomes one of ours, here and
nowhere else, the way httpx's map_httpcore_exceptions maps httpcore's.

``map_error(exc, Context)`` is the table; the talker (``_client``: quick calls, streams, pull
and chat errors) is its only caller. The context says what the call was doing, which decides
the row: a 404 to a chat is a missing model, to a delete there is nothing to delete, in a pull
there is no such model in the registry. Texts from the server are redacted (no server paths).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import ssl
import threading
from typing import Any, Optional

import httpx
import ollama

from . import settings
from .errors import (
    CloudDisabled,
    CloudSignInRequired,
    ContextPilotError,
    InvalidRequest,
    ModelCrashed,
    ModelNotFound,
    NotAChatModel,
    OllamaBusy,
    OllamaError,
    OllamaUnavailable,
    PullCancelled,
    PullFailed,
)

_capture = threading.local()  # the raw body of the last error answer, per thread

_TRANSPORT_LOST = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                   ConnectionAbortedError, ConnectionResetError, BrokenPipeError)
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, ConnectionError,
                httpx.TransportError)
# An absolute path where Go puts one: after the start, a space, a quote or "(" (so neither a
# URL's "//" nor "user/model" matches), up to the ": " that ends it in "op path: reason", a
# quote, ", ", a ")" that closes a sentence's parenthesis, or the end. Spaces inside the path
# ("/Users/John Smith/...") are part of it.
_PATH = re.compile(r"""(?:(?<=^)|(?<=[\s"'(]))(?:[A-Za-z]:\\|/)(?!/)[^"'\n]*?"""
                   r"""(?=: |["']|, |\)(?:[\s.,;:]|$)|$)""")
# A URL in Ollama's words ('max retries exceeded: Get "<url>": dial tcp ...'). A blob's URL is
# the storage host's signed link (X-Amz-Signature=..., 400 characters): a secret for a while,
# and noise always. Only its scheme and host are kept.
_URL = re.compile(r"""\b(https?://)([^/\s"'<>?#]+)([^\s"'<>]*)""")
_SECRET_PATH = re.compile(r"sha256[:-]|/blobs?/|/cdn/", re.I)

# llm/server.go ErrLoadRequiredFull, llm/llama_server.go, and servers before v0.30.0.
_OUT_OF_MEMORY = ("unable to load full model on gpu", "out-of-memory", "out of memory",
                  "requires more system memory", "cudamalloc failed", "insufficient memory")
_RUNNER_STOPPED = ("model runner has unexpectedly stopped", "runner process has terminated",
                   "an error was encountered while running the model")


@dataclasses.dataclass(frozen=True)
class Context:
    """What a call was doing when it failed: the row of the table depends on it."""

    host: str
    op: str = "call"
    "call (list, show, ps, load...), delete, pull or chat."
    model: Optional[str] = None
    "The model's name as shown (``ModelName.display``)."
    during: Optional[str] = None
    "For 'lost the connection during the ...'."
    stream: Any = None
    "A pull's or chat's ``_client.Stream``: an abort (its ``aborted``) says why it ended."
    cloud: bool = False
    "The model runs on ollama.com (its 404 is an answer, not a missing download)."


def redact(text: str) -> str:
    """Hide the server's filesystem paths in an error text.

    >>> redact("write /root/.ollama/models/blobs/sha256-ab-partial: no space left on device")
    'write <path>: no space left on device'
    >>> redact("open /Users/John Smith/.ollama/id: permission denied")
    'open <path>: permission denied'
    >>> redact('"user/model:tag" does not support vision')
    '"user/model:tag" does not support vision'
    >>> redact("requires a newer version of Ollama: https://ollama.com/download")
    'requires a newer version of Ollama: https://ollama.com/download'
    >>> redact(r"write C:\\Users\\me\\.ollama\\blob: There is not enough space on the disk.")
    'write <path>: There is not enough space on the disk.'
    >>> redact("only 1 GB is free where Ollama keeps models (/srv/models). Free some space.")
    'only 1 GB is free where Ollama keeps models (<path>). Free some space.'

    A blob's (signed) URL keeps only its host; a manifest's or a web page's stays as it is:

    >>> redact('max retries exceeded: Get "https://x.r2.example.com/ollama/docker/registry/v2/'
    ...        'blobs/sha256/d5/d5aa/data?X-Amz-Algorithm=AWS4&X-Amz-Signature=9f3c": dial '
    ...        'tcp 1.2.3.4:443: connect: connection refused')
    'max retries exceeded: Get "https://x.r2.example.com/…": dial tcp 1.2.3.4:443: connect: connection refused'
    >>> redact('Get "http://127.0.0.1:5000/v2/library/tiny/manifests/latest": EOF')
    'Get "http://127.0.0.1:5000/v2/library/tiny/manifests/latest": EOF'
    """
    return _PATH.sub("<path>", _URL.sub(_url_host, text))


def _url_host(match: re.Match) -> str:
    scheme, host, rest = match.groups()
    if "?" in rest or "#" in rest or _SECRET_PATH.search(rest) or len(rest) > 120:
        return f"{scheme}{host}/…"
    return match.group(0)


def map_error(exc: BaseException, ctx: Context) -> Exception:
    """The one table: ``exc`` raised while doing ``ctx`` -> the error the user sees."""
    stream = ctx.stream
    if stream is not None and stream.aborted:  # we ended it: the abort says why
        return _aborted(stream.aborted, ctx)
    if isinstance(exc, ContextPilotError):  # already ours: keep its words
        return exc
    if isinstance(exc, ollama.ResponseError):
        return _response(exc, ctx)
    if isinstance(exc, json.JSONDecodeError) or _bad_answer(exc):
        return _malformed(ctx)
    if isinstance(exc, (ValueError, TypeError)):  # pydantic's ValidationError is a ValueError
        return InvalidRequest(f"The request could not be sent to Ollama: {_invalid(exc)}")
    if isinstance(exc, httpx.ProxyError):
        return OllamaUnavailable(ctx.host, message=(
            f"Could not reach Ollama at {ctx.host} through the proxy ({_short(exc)}). Check "
            f"HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, or add the host to NO_PROXY."))
    if _is_tls(exc):
        return OllamaUnavailable(ctx.host, message=(
            f"The secure (TLS) connection to {ctx.host} failed ({_short(_tls_cause(exc))}). "
            f"Check the https:// address and its certificate (SSL_CERT_FILE), or use http:// "
            f"for a local Ollama."))
    return _transport(exc, ctx)


def _aborted(reason: str, ctx: Context) -> Exception:
    model = ctx.model or ""
    if reason == "cancelled":
        return PullCancelled(model)
    kind = "stalled" if reason.startswith("stalled") else (
        "disk full" if "no space left" in reason else "other")
    return PullFailed(model, reason, kind=kind)


def _transport(exc: BaseException, ctx: Context) -> Exception:
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)) and ctx.op == "call":
        limit = settings.seconds("CONTEXTPILOT_READ_TIMEOUT")
        return OllamaError("no answer", None, ctx.model, message=(
            f"Ollama at {ctx.host} did not answer within {limit:g} s; it may be busy "
            f"(loading a model). Try again in a moment"))
    refused = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                               ConnectionRefusedError)) or (
        isinstance(exc, ConnectionError) and "Failed to connect" in str(exc))
    if refused:
        timeout = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
        return OllamaUnavailable(ctx.host, kind="connect timeout" if timeout else "refused")
    if isinstance(exc, (*_TRANSPORT_LOST, httpx.TimeoutException, ConnectionError)):
        if ctx.op == "pull":
            return PullFailed(ctx.model or "", "connection lost: Ollama closed the stream",
                              kind="connection lost")
        return OllamaUnavailable(ctx.host, during=ctx.during or (
            "answer" if ctx.op == "chat" else "request"), kind="lost")
    if isinstance(exc, httpx.TransportError):
        return OllamaUnavailable(ctx.host)
    if isinstance(exc, httpx.HTTPError):
        return OllamaError(f"unexpected answer from Ollama ({type(exc).__name__})", None,
                           ctx.model)
    if ctx.op == "pull":
        return PullFailed(ctx.model or "", f"{type(exc).__name__}: {_short(exc)}", kind="other")
    return OllamaError(f"{type(exc).__name__}: {_short(exc)}", None, ctx.model)


def _bad_answer(exc: BaseException) -> bool:
    """The answer, not the request, was wrong: a pydantic error about one of the client's
    *Response types (ListResponse, ChatResponse...), ``Response(**None)``, or the client
    calling ``.get`` on a line that is not an object. Nothing a caller can fix by
    rewriting the request: the server is not Ollama, or a proxy answered for it."""
    if str(getattr(exc, "title", "")).endswith("Response") or "Response() argument" in str(exc):
        return True
    if isinstance(exc, AttributeError):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is not None and f"{os.sep}ollama{os.sep}" in tb.tb_frame.f_code.co_filename
    return False


def _check_host() -> str:
    return (f"Check that OLLAMA_HOST (or --ollama-host) points at Ollama itself (default "
            f"{settings.DEFAULT_OLLAMA_HOST}), not a proxy or another web app, and that Ollama is up to date.")


def _malformed(ctx: Context) -> Exception:
    if ctx.op == "pull":
        return PullFailed(ctx.model or "", f"the server at {ctx.host} sent a progress line "
                          f"that is not Ollama's. {_check_host()}", kind="other")
    return OllamaError("Ollama sent a malformed answer", None, ctx.model, message=(
        f"The server at {ctx.host} did not answer like Ollama. {_check_host()}"))


def _response(exc: ollama.ResponseError, ctx: Context) -> Exception:
    """Ollama answered with an error: by its status (-1: an error line inside a stream)."""
    status, reason, model = exc.status_code, _reason(exc), ctx.model
    low = reason.lower()
    cloud = ctx.cloud
    if status == 503:
        return OllamaBusy(reason, model)
    if status == 401:
        return CloudSignInRequired(reason, model, signin_url=_signin_url(exc),
                                   direct=_is_ollama_com(ctx.host))
    if status == 403 and "cloud is disabled" in low:
        return CloudDisabled(reason, model)
    if status == 501 and ctx.op != "chat":
        return _not_implemented(reason, ctx)
    if status == 499:
        return OllamaError(reason, 499, model, message=(
            f"Ollama cancelled the request ({reason}): the connection closed before it "
            f"answered. Send it again."))
    if any(k in low for k in _OUT_OF_MEMORY):
        return ModelCrashed(reason, model, status_code=status, out_of_memory=True)
    if any(k in low for k in _RUNNER_STOPPED):
        return ModelCrashed(reason, model, status_code=status,
                            mid_answer=ctx.op == "chat" and status == -1)
    if low.startswith("option ") and " must be of " in low:  # api.Options.FromMap
        return InvalidRequest(f"Ollama refused an option: {reason}. Fix that value in "
                              f"options (see https://docs.ollama.com/modelfile#parameter).")
    if reason.startswith("<"):  # an HTML error page: a proxy or another server answered
        return OllamaError(reason[:200], status, model, message=(
            f"The server at {ctx.host} answered HTTP {status} with a web page, not Ollama's "
            f"JSON (a proxy or another server is in the way, or Ollama is restarting). "
            f"{_check_host()}"))
    if ctx.op == "pull":
        return _pull_response(status, reason, model or "")
    if status == 400 and model and "does not support chat" in low:  # no "completion"
        return NotAChatModel(model)
    if status == 404 and model and ctx.op == "delete":  # a cloud name too: nothing here
        found = ModelNotFound(model, installed_only=True)
        found.args = (f"Model '{model}' is not installed, so there is nothing to delete.",)
        return found
    if status == 404 and model:
        return ModelNotFound(model, installed_only=not cloud, cloud=cloud)
    if status >= 500:  # no row of ours: the server's log says why
        return OllamaError(reason, status, model, message=(
            f"Ollama reported an error: {reason}. Try again; if it persists, Ollama's log "
            f"says why (the 'ollama serve' output, or ~/.ollama/logs/server.log)."))
    return OllamaError(reason, status, model)


ROUTER_ADVICE = ("The server at {host} answers chats but not downloads, details or deletes: "
                 "it is a router in front of Ollama (Olla, a proxy), not Ollama itself. "
                 "Those need the Ollama hosts' own addresses: list them in OLLAMA_HOSTS "
                 "(gpu1=http://10.0.0.5:11434,gpu2=http://10.0.0.6:11434).")


def _not_implemented(reason: str, ctx: Context) -> Exception:
    """501 to a pull, show or delete: a router that proxies chats only (Olla does)."""
    advice = ROUTER_ADVICE.format(host=ctx.host)
    if ctx.op == "pull":
        return PullFailed(ctx.model or "", f"the server does not do downloads ({reason})",
                          kind="router", advice=advice)
    return OllamaError(reason, 501, ctx.model, message=f"{advice} (It said: {reason}.)")


def _pull_response(status: int, reason: str, model: str) -> Exception:
    low = reason.lower()
    if status == 404 or "file does not exist" in low or "not found" in low:
        # "pull model manifest: file does not exist", and the newer registry client's
        # {"code": "not_found", "error": "model \"x\" not found"} line
        return ModelNotFound(model)
    if status == 400:
        return OllamaError(reason, status, model)
    if "no space left" in low or "not enough space" in low:
        return PullFailed(model, reason, kind="disk full")
    if "digest mismatch" in low:  # download.go deleted the file: it starts over, not resumes
        return PullFailed(model, "digest mismatch: the downloaded file was corrupt",
                          kind="digest mismatch")
    if "newer version of ollama" in low:  # the registry's 412 (a model for a newer server)
        return PullFailed(model, "the model requires a newer version of Ollama",
                          kind="update ollama")
    if "requires mlx support" in low:  # images.go: a safetensors model, no MLX runtime
        return PullFailed(model, reason, kind="unsupported")
    if "permission denied" in low or "access is denied" in low or "read-only file" in low:
        return PullFailed(model, reason, kind="permission")
    if any(k in low for k in _REGISTRY_UNREACHABLE):
        return PullFailed(model, reason, kind="registry unreachable")
    return PullFailed(model, " ".join(reason.split()), kind="other")


# Go's net errors when the Ollama server cannot reach registry.ollama.ai (or its CDN).
_REGISTRY_UNREACHABLE = ("no such host", "i/o timeout", "connection refused",
                         "network is unreachable", "tls handshake timeout",
                         "server misbehaving", "temporary failure in name resolution",
                         "no route to host", "proxyconnect")


def _reason(exc: ollama.ResponseError) -> str:
    return redact(str(exc.error).strip()) or f"HTTP {exc.status_code}"


def _invalid(exc: BaseException) -> str:
    """A pydantic ValidationError as one line ("messages.0.role: Field required"), without
    its type tags and errors.pydantic.dev links; any other error as its short text."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            first = errors(include_url=False, include_context=False, include_input=False)[0]
            where = ".".join(str(p) for p in first.get("loc", ())
                             if str(p) not in _UNION_TAGS and "[" not in str(p))
            text = str(first.get("msg", "")).removeprefix("Value error, ")
            return (f"{where}: {text}" if where else text) + "."
    # pydantic's serializer wraps a validator's error: "Error calling function `f`: ValueError: x"
    return _SERIALIZER.sub("", _short(exc).splitlines()[0])


_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "bytes", "function-after",
               "function-plain", "function-wrap", "json-or-python"}
_SERIALIZER = re.compile(r"^Error calling function `[^`]*`: \w+: ")


def _short(exc: BaseException, limit: int = 300) -> str:
    text = redact(str(exc).strip()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _is_ollama_com(host: str) -> bool:
    return (httpx.URL(host).host or "").lower() in ("ollama.com", "www.ollama.com")


def _is_tls(exc: BaseException) -> bool:
    return isinstance(_tls_cause(exc), ssl.SSLError)


def _tls_cause(exc: BaseException) -> BaseException:
    seen: BaseException | None = exc
    for _ in range(5):  # httpx wraps httpcore wraps ssl
        if seen is None or isinstance(seen, ssl.SSLError):
            break
        seen = seen.__cause__ or seen.__context__
    return seen if isinstance(seen, ssl.SSLError) else exc


def _signin_url(exc: ollama.ResponseError) -> str:
    """The 401 body's ``signin_url``: ollama-python keeps only "error", so the response
    hook (``keep_error_body``) keeps the raw body of the last error on this thread."""
    body = getattr(_capture, "error_body", "") or ""
    with contextlib.suppress(ValueError, AttributeError):
        url = json.loads(body).get("signin_url") or ""
        if isinstance(url, str) and url.startswith("https://"):
            return url
    return ""


def keep_error_body(response: httpx.Response) -> None:
    """An httpx response hook: keep an error answer's raw body (see ``_signin_url``)."""
    if response.status_code >= 400:
        response.read()  # small: an error body; ollama-python reads it again (cached)
        _capture.error_body = response.text[:4000]



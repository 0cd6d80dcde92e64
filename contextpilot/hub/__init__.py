"""GGUF models on the Hugging Face Hub, through ``huggingface_hub``: search, the quantisations
of a repository with their sizes, and whether each fits this machine.

Ollama pulls any of them as ``hf.co/<user>/<repo>:<QUANT>``. The Hub is ``HF_ENDPOINT``
(read at call time, see ``settings.hub_endpoint``). Whether a quantisation fits this machine
is the fit check's to say (``contextpilot.fit.quants``); ``gguf`` reads a file's header. Every request has a timeout and is
not retried (a slow Hub gives a clear HubUnavailable within HUB_TIMEOUT, the caller keeps
working); ``huggingface_hub``'s own calls outside ours are left as they are.

``token``: the Hugging Face token a call sends: None (the default) is huggingface_hub's own
(``HF_TOKEN``, or ``huggingface-cli login``); False sends none. An app passes False for a
visitor's request, so the operator's token never rides along with what a visitor asks.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Iterator, Optional, Union

from .. import settings
from ..errors import ContextPilotError, HubNotFound, HubUnavailable, InvalidRequest
from ..names import ModelName
from ..types import HubModel, HubQuant
from .gguf import arch_counts, read_metadata

if TYPE_CHECKING:
    from huggingface_hub import HfApi

HUB_TIMEOUT = 8.0
"Seconds the Hub may take to connect or answer one request."
MAX_QUERY = 200
MAX_LIMIT = 100
DEFAULT_QUANT = "Q4_K_M"
"What Ollama pulls for an hf.co name without a tag, when the repository has it."

# The Hub's repo-id rules (huggingface_hub's validate_repo_id), ASCII only, and a namespace:
# Ollama needs hf.co/<user>/<repo>.
_REPO_ID = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?/"
                      r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?", re.ASCII)
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_QUANT = re.compile(
    r"(?:^|[-._])((?:UD-)?(?:I?Q\d_[A-Z0-9]+(?:_[A-Z0-9]+)*|Q\d_\d|Q\d|TQ\d_\d|"
    r"MXFP4(?:_MOE)?|BF16|F16|FP16|F32))$", re.IGNORECASE)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
HF_HOSTS = frozenset({"hf.co", "huggingface.co"})
Token = Union[str, bool, None]
"A Hugging Face token: None, huggingface_hub's own; False, none; or the token itself."


def is_hf(name: ModelName) -> bool:
    """A name Ollama pulls from Hugging Face (``hf.co/<user>/<repo>:<QUANT>``)."""
    return name.host.lower() in HF_HOSTS


# -- names ---------------------------------------------------------------------------------

def repo_id(text: object) -> str:
    """A repository id checked against the Hub's rules before any request.

    >>> repo_id("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF")
    'bartowski/Llama-3.2-1B-Instruct-GGUF'
    >>> repo_id("../etc/passwd")
    Traceback (most recent call last):
    ...
    contextpilot.errors.InvalidRequest: '../etc/passwd' is not a Hugging Face repository id: use the form user/repo, e.g. bartowski/Llama-3.2-1B-Instruct-GGUF.
    """
    raw = text.strip() if isinstance(text, str) else ""
    rid = raw
    for prefix in ("https://huggingface.co/", "https://hf.co/", "huggingface.co/", "hf.co/"):
        if rid.lower().startswith(prefix):
            rid = rid[len(prefix):]
            break
    if not (_REPO_ID.fullmatch(rid) and ".." not in rid and "--" not in rid
            and not rid.endswith(".git")):
        shown = repr(text if len(str(text)) < 80 else str(text)[:77] + "...")
        raise InvalidRequest(f"{shown} is not a Hugging Face repository id: use the form "
                             f"user/repo, e.g. bartowski/Llama-3.2-1B-Instruct-GGUF.")
    return rid


def quant_label(filename: str) -> Optional[str]:
    """The quantisation in a GGUF file name, as Ollama's tag (upper case), or None.

    >>> [quant_label(f) for f in ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "model.Q4_K_M.gguf",
    ...  "qwen2-0_5b-instruct-q4_k_m.gguf", "Qwen3-UD-Q8_K_XL.gguf", "x-IQ2_XXS.gguf",
    ...  "big-Q8_0-00001-of-00003.gguf", "notes.gguf")]
    ['Q4_K_M', 'Q4_K_M', 'Q4_K_M', 'UD-Q8_K_XL', 'IQ2_XXS', 'Q8_0', None]
    """
    stem = _SPLIT.sub("", filename.rsplit("/", 1)[-1])
    stem = stem[:-5] if stem.lower().endswith(".gguf") else stem
    match = _QUANT.search(stem)
    return match.group(1).upper() if match else None


# -- requests ------------------------------------------------------------------------------

_limit: ContextVar[Optional[float]] = ContextVar("contextpilot_hub_limit", default=None)
_install_lock = threading.Lock()
_installed = False


def _install_bounded_session() -> None:
    """Give huggingface_hub's shared client a transport that, inside our calls only, sets a
    timeout on every request and fails at once instead of retrying with back-off
    (huggingface_hub lists with no timeout and retries a dead Hub for ~20 s). A client
    factory someone else set is left alone."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        import huggingface_hub
        from huggingface_hub.utils import _http

        if getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) is not _http.default_client_factory:
            return

        def factory():
            client = _http.default_client_factory()
            try:  # httpx2's transports are private attributes: if they move, go unbounded
                client._transport = _Bounded(client._transport)
                client._mounts = {k: (_Bounded(v) if v is not None else v)
                                  for k, v in client._mounts.items()}
            except AttributeError:
                pass
            return client

        huggingface_hub.set_client_factory(factory)


class _Bounded:
    """A transport wrapper: our timeout, and an error of ours (never retried) for a Hub that
    is unreachable, slow or failing."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def handle_request(self, request):
        import httpx2

        limit = _limit.get()
        if limit is None:
            return self.inner.handle_request(request)
        request.extensions["timeout"] = httpx2.Timeout(limit).as_dict()
        where = f"{request.url.scheme}://{request.url.netloc.decode()}"
        try:
            response = self.inner.handle_request(request)
        except httpx2.TimeoutException as exc:
            raise HubUnavailable(where, f"it did not answer within {limit:g} s") from exc
        except httpx2.TransportError as exc:
            raise HubUnavailable(where, "it cannot be reached") from exc
        if response.status_code >= 500 or response.status_code == 429:
            response.close()
            raise HubUnavailable(where, f"it answered HTTP {response.status_code}")
        return response

    def close(self) -> None:
        self.inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _hub_call(repo: Optional[str] = None, token: Token = None) -> Iterator["HfApi"]:
    """An HfApi for the configured endpoint sending ``token``; huggingface_hub's errors
    become ours."""
    from huggingface_hub import HfApi, errors

    _install_bounded_session()
    endpoint = settings.hub_endpoint()
    limit = _limit.set(HUB_TIMEOUT)
    try:
        yield HfApi(endpoint=endpoint, token=token)
    except ContextPilotError:
        raise
    except errors.OfflineModeIsEnabled as exc:
        raise HubUnavailable(endpoint, "offline mode is on (HF_HUB_OFFLINE=1)") from exc
    except errors.GatedRepoError as exc:
        raise HubNotFound(repo or "", reason="gated") from exc
    except errors.RepositoryNotFoundError as exc:
        raise HubNotFound(repo or "", reason="missing") from exc
    except errors.HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        raise HubUnavailable(endpoint, f"it answered HTTP {status}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:  # odd answers, broken links
        raise HubUnavailable(endpoint, f"its answer could not be read ({type(exc).__name__})"
                             ) from exc
    finally:
        _limit.reset(limit)


# -- search --------------------------------------------------------------------------------

def search_models(query: str, limit: int = 20, *, token: Token = None) -> list[HubModel]:
    """GGUF repositories on the Hub matching ``query``, most downloaded first (``token``:
    see the module docstring)."""
    text = " ".join(query.split()) if isinstance(query, str) else ""
    if not text:
        raise InvalidRequest("Type a few words to search for, e.g. 'llama 3.2 1b'.")
    if len(text) > MAX_QUERY:
        raise InvalidRequest(f"The search is too long ({len(text)} characters; the limit is "
                             f"{MAX_QUERY}). Use a few words.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_LIMIT} "
                             f"(got {limit!r:.20}).")
    count = limit
    with _hub_call(token=token) as api:
        found = list(api.list_models(search=text, filter="gguf", sort="downloads", limit=count,
                                     expand=["downloads", "likes", "lastModified"]))
        models = [HubModel(id=m.id, downloads=int(m.downloads or 0), likes=int(m.likes or 0),
                           last_modified=_when(m.last_modified)) for m in found
                  if isinstance(m.id, str) and m.id]
    return sorted(models, key=lambda m: -m.downloads)


def _when(value: object) -> Optional[datetime]:
    return value if isinstance(value, datetime) else None


# -- a repository's quantisations ----------------------------------------------------------

def repo_files(repo: str, *, token: Token = None) -> list[tuple[str, int]]:
    """(path, size) of every file in the repository (the tree, recursive)."""
    rid = repo_id(repo)
    with _hub_call(rid, token) as api:
        return [(f.path, _size(f.size)) for f in api.list_repo_tree(rid, recursive=True)
                if hasattr(f, "size") and isinstance(f.path, str)]


def _size(value: object) -> int:
    """A file's size from the Hub: a whole number of bytes, or 0 (unknown) for anything
    else (a negative or absurd figure from a broken mirror must not reach the estimate)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_FILE
    return int(value) if ok and isinstance(value, int) else 0


MAX_FILE = 1 << 50
"Bytes: a GGUF file larger than this (1 PiB) is a broken answer, not a model."


def quants_of(repo: str, files: list[tuple[str, int]]) -> list[HubQuant]:
    """Group GGUF files into Ollama tags (split files summed), smallest first; projectors
    last. Raises HubNotFound when there is no GGUF file at all."""
    groups: dict[str, dict] = {}
    projectors: list[HubQuant] = []
    for path, size in files:
        base = path.rsplit("/", 1)[-1]
        if not base.lower().endswith(".gguf"):
            continue
        if base.lower().startswith("mmproj"):
            projectors.append(HubQuant(repo=repo, tag=base[:-5], size=size, files=(path,),
                                       pullable=False, projector=True, reason=(
                                           "a vision projector: Ollama pulls it with a model "
                                           "of this repository, not on its own")))
            continue
        tag = quant_label(base) or base[:-5]
        g = groups.setdefault(tag.upper(), {"tag": tag, "size": 0, "files": [], "split": False})
        g["size"] += size
        g["files"].append(path)
        g["split"] = g["split"] or bool(_SPLIT.search(base)) or len(g["files"]) > 1
    if not groups and not projectors:
        raise HubNotFound(repo, reason="no gguf")
    quants = [_quant(repo, g) for g in groups.values()]
    return sorted(quants, key=lambda q: q.size) + projectors


def _quant(repo: str, g: dict) -> HubQuant:
    reason = ""
    if g["split"]:
        reason = (f"split into {len(g['files'])} files: Ollama cannot pull a sharded GGUF "
                  f"from Hugging Face (download and merge it, then 'ollama create')")
    elif not _TAG.fullmatch(g["tag"]):
        reason = "its file name cannot be an Ollama tag"
    return HubQuant(repo=repo, tag=g["tag"], size=g["size"], files=tuple(sorted(g["files"])),
                    pullable=not reason, reason=reason)


HEADER_BYTES = 1_048_576
"How much of a GGUF file is read for its layer counts (they come before the tokenizer)."


def file_arch(repo: str, path: str, *, token: Token = None
              ) -> Optional[tuple[int, int, int]]:
    """(layers, KV heads, head size) from the GGUF header of ``path`` (a ranged read of its
    first HEADER_BYTES), or None when it cannot be read."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session

    url = hf_hub_url(repo, path, endpoint=settings.hub_endpoint())
    headers = {**build_hf_headers(token=token), "Range": f"bytes=0-{HEADER_BYTES - 1}"}
    data = b""
    try:
        with _hub_call(repo):
            with get_session().stream("GET", url, headers=headers) as response:
                if response.status_code not in (200, 206):
                    return None
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) >= HEADER_BYTES:
                        break
    except ContextPilotError:
        return None
    return arch_counts(read_metadata(data[:HEADER_BYTES]))


def pick_quant(repo: str, quants: list[HubQuant], tag: str) -> HubQuant:
    """The quantisation Ollama would pull for ``tag`` (case-insensitive; ``latest`` means
    Q4_K_M when present, or the only one)."""
    models = [q for q in quants if not q.projector]
    want = tag.upper()
    if want == "LATEST":
        found = [q for q in models if q.tag.upper() == DEFAULT_QUANT] or (
            models if len(models) == 1 else [])
    else:
        found = [q for q in models if q.tag.upper() == want or any(
            f.rsplit("/", 1)[-1].upper() in (want, want + ".GGUF") for f in q.files)]
    if not found:
        raise HubNotFound(repo, quant=tag, available=tuple(q.tag for q in models))
    return found[0]


__all__ = ["DEFAULT_QUANT", "HF_HOSTS", "Token", "file_arch", "is_hf", "pick_quant", "quant_label",
           "quants_of", "repo_files", "repo_id", "search_models"]

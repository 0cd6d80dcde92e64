"""Model names, parsed and compared the way Ollama does (types/model/name.go and
internal/modelref/modelref.go).

A name is ``[scheme://host/][namespace/]model[:tag][:local|:cloud]``; missing parts default
to ``registry.ollama.ai``, ``library`` and ``latest``. Parts are compared case-insensitively.
A source suffix says where the model runs: ``:local`` is stripped (this machine), ``:cloud``
or a tag ending ``-cloud`` is a model on ollama.com, kept in the form Ollama's pull writes
(``gpt-oss:20b:cloud`` is ``gpt-oss:20b-cloud``).

>>> parse_name("llama3.2").display
'llama3.2:latest'
>>> parse_name("registry.ollama.ai/library/LLAMA3.2:latest").key == parse_name("llama3.2").key
True
>>> parse_name("hf.co/user/repo:Q4_K_M").display
'hf.co/user/repo:Q4_K_M'
>>> parse_name("user/model:tag").display
'user/model:tag'
>>> parse_name("localhost:5000/me/tiny").host
'localhost:5000'
>>> len(parse_name("hf.co/u/" + "m" * 128 + ":Q4_K_M").model)  # parts up to 128 (Ollama 0.34)
128
>>> parse_name("m:" + "t" * 129)
Traceback (most recent call last):
...
contextpilot.errors.InvalidModelName: Invalid model name 'm:ttttttttttttttttttttttttttttttttttttttttttttttttttttt...': the tag part is longer than 128 characters. Use a name like 'llama3.2', 'qwen3:0.6b', 'user/model:tag' or 'hf.co/user/repo:Q4_K_M'.
>>> parse_name("qwen3:8b:local").display
'qwen3:8b'
>>> n = parse_name("gpt-oss:120b:cloud"); (n.display, n.is_cloud)
('gpt-oss:120b-cloud', True)
>>> parse_name("qwen3:cloud").display
'qwen3:cloud'
>>> parse_name("http://localhost:5000/me/tiny").display
'http://localhost:5000/me/tiny:latest'
>>> parse_name("foo:cloud:local")
Traceback (most recent call last):
...
contextpilot.errors.InvalidModelName: Invalid model name 'foo:cloud:local': use either :local or :cloud, not both. Use a name like 'llama3.2', 'qwen3:0.6b', 'user/model:tag' or 'hf.co/user/repo:Q4_K_M'.
>>> parse_name("../x")
Traceback (most recent call last):
...
contextpilot.errors.InvalidModelName: Invalid model name '../x': the namespace '..' has characters Ollama does not allow. Use a name like 'llama3.2', 'qwen3:0.6b', 'user/model:tag' or 'hf.co/user/repo:Q4_K_M'.
>>> parse_name("model:tag:extra").model
Traceback (most recent call last):
...
contextpilot.errors.InvalidModelName: Invalid model name 'model:tag:extra': the model 'model:tag' has characters Ollama does not allow. Use a name like 'llama3.2', 'qwen3:0.6b', 'user/model:tag' or 'hf.co/user/repo:Q4_K_M'.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Optional

from .errors import InvalidModelName

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

# Ollama's limits per part (isValidLen): host 350, every other part 128 characters since
# 0.34 (80 before; long hf.co/<user>/<repo>:<file> names need more). Refusing what today's
# server accepts is worse than letting an older one say "invalid model name".
_MAX_LEN = {"host": 350, "namespace": 128, "model": 128, "tag": 128}
_WORD = frozenset(string.ascii_letters + string.digits + "_")
CONFLICTING_SOURCES = "use either :local or :cloud, not both"  # modelref.ErrConflictingSourceSuffix


@dataclass(frozen=True)
class ModelName:
    """A parsed, fully qualified model name."""

    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = DEFAULT_SCHEME
    "``http`` only for a plain-HTTP registry (pulled only with ``insecure=True``)."
    source: str = ""
    "The source suffix as written: ``local``, ``cloud`` or empty."

    @property
    def display(self) -> str:
        """The shortest form, as Ollama lists it: ``llama3.2:latest``, ``user/m:tag``
        (with ``http://`` kept for a plain-HTTP registry, which Ollama must be told about)."""
        if self.host.lower() != DEFAULT_HOST or self.scheme != DEFAULT_SCHEME:
            prefix = "http://" if self.scheme == "http" else ""
            return f"{prefix}{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """The case-folded full name: equal keys mean the same model to Ollama."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()

    @property
    def is_cloud(self) -> bool:
        """A model that runs on ollama.com (a ``cloud`` tag or one ending ``-cloud``): the
        local server proxies it, so it is never downloaded nor fit-checked here."""
        tag = self.tag.lower()
        return tag == "cloud" or tag.endswith("-cloud")

    def __str__(self) -> str:
        return self.display


def parse_name(name: object) -> ModelName:
    """Parse and validate ``name``; raise InvalidModelName for anything Ollama would refuse.

    A ``ModelName`` is returned as it is: a name is parsed once, where it enters the library
    (a public function's argument, a server's answer), and travels parsed from there.
    """
    if isinstance(name, ModelName):
        return name
    if not isinstance(name, str):
        raise InvalidModelName(name, "a model name must be text")
    text = name.strip()
    if not text:
        raise InvalidModelName(name, "the name is empty")
    if len(text) > 800:  # more than scheme, host, three parts and a suffix can make
        raise InvalidModelName(name, "the name is far too long")
    if "@" in text:
        raise InvalidModelName(name, "a digest ('@sha256:...') cannot name a model; use a tag")
    base, source = _split_source(name, text)
    scheme, base = _split_scheme(name, base)
    tag = DEFAULT_TAG
    explicit_tag = base.rfind(":") > base.rfind("/")
    if explicit_tag:
        base, tag = base.rsplit(":", 1)
    if source == "cloud":  # what Ollama's pull writes (modelref.NormalizePullName)
        tag = f"{tag}-cloud" if explicit_tag else "cloud"
    parts = base.split("/")
    if len(parts) > 3:
        raise InvalidModelName(name, "too many '/' (expected [host/][namespace/]model[:tag])")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    else:
        (model,) = parts
    result = ModelName(host, namespace, model, tag, scheme, source)
    for kind in ("host", "namespace", "model", "tag"):
        _check_part(name, kind, getattr(result, kind))
    return result


def _source_suffix(raw: str) -> tuple[str, str]:
    """modelref.parseSourceSuffix: (base, "local" | "cloud" | "")."""
    idx = raw.rfind(":")
    if idx < 0:
        return raw, ""
    suffix_raw = raw[idx + 1:].strip()
    suffix = suffix_raw.lower()
    if suffix in ("cloud", "local"):
        return raw[:idx], suffix
    if "/" not in suffix_raw and suffix.endswith("-cloud"):
        return raw[:idx + 1] + suffix_raw[:-len("-cloud")], "cloud"
    return raw, ""


def _split_source(name: object, text: str) -> tuple[str, str]:
    base, source = _source_suffix(text)
    if source and _source_suffix(base)[1]:
        raise InvalidModelName(name, CONFLICTING_SOURCES)
    return base, source


def _split_scheme(name: object, text: str) -> tuple[str, str]:
    """Ollama reads a scheme only before a host (``http://host:port/ns/model``)."""
    if "://" not in text:
        return DEFAULT_SCHEME, text
    scheme, rest = text.split("://", 1)
    if scheme.lower() not in ("http", "https"):
        raise InvalidModelName(name, f"only http:// and https:// registries are supported, "
                                     f"not {_clip(scheme, 10)!r}")
    if rest.count("/") != 2:
        raise InvalidModelName(name, "a registry address needs the full name "
                                     "(http://host:port/namespace/model)")
    return scheme.lower(), rest


def _check_part(name: object, kind: str, part: str) -> None:
    if not part:
        raise InvalidModelName(name, f"the {kind} part is empty")
    if len(part) > _MAX_LEN[kind]:
        raise InvalidModelName(name, f"the {kind} part is longer than {_MAX_LEN[kind]} characters")
    if not _valid_chars(kind, part):
        raise InvalidModelName(
            name, f"the {kind} {_clip(part)!r} has characters Ollama does not allow"
        )


def _valid_chars(kind: str, part: str) -> bool:
    # Ollama's isValidPart: first a letter, digit or "_"; then also "-", "." (not in a
    # namespace) and ":" (only in a host, for a port).
    if part[0] not in _WORD:
        return False
    extra = {"-"}
    if kind != "namespace":
        extra.add(".")
    if kind == "host":
        extra.add(":")
    return all(c in _WORD or c in extra for c in part[1:])


def _clip(part: str, limit: int = 30) -> str:
    return part if len(part) <= limit else part[:limit] + "..."


def listed_key(server_name: str) -> Optional[str]:
    """A name a server listed, as a key (parsed where it arrives); None when it is not a
    valid name."""
    try:
        return parse_name(server_name).key
    except ValueError:
        return None


def same_model(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same model (both must be valid).

    >>> same_model("Llama3.2", "registry.ollama.ai/library/llama3.2:latest")
    True
    >>> same_model("llama3.2:1b", "llama3.2")
    False
    """
    return parse_name(a).key == parse_name(b).key

"""Model names, parsed and compared the way Ollama does (types/model/name.go).

A name is ``[host/][namespace/]model[:tag]``; missing parts default to
``registry.ollama.ai``, ``library`` and ``latest``. Parts are compared case-insensitively.

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

from .errors import InvalidModelName

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Ollama's limits per part (isValidLen): host 350, every other part 80 characters.
_MAX_LEN = {"host": 350, "namespace": 80, "model": 80, "tag": 80}
_WORD = frozenset(string.ascii_letters + string.digits + "_")


@dataclass(frozen=True)
class ModelName:
    """A parsed, fully qualified model name."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """The shortest form, as Ollama lists it: ``llama3.2:latest``, ``user/m:tag``."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """The case-folded full name: equal keys mean the same model to Ollama."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()

    def __str__(self) -> str:
        return self.display


def parse_name(name: object) -> ModelName:
    """Parse and validate ``name``; raise InvalidModelName for anything Ollama would refuse."""
    if not isinstance(name, str):
        raise InvalidModelName(name, "a model name must be text")
    text = name.strip()
    if not text:
        raise InvalidModelName(name, "the name is empty")
    if len(text) > 600:
        raise InvalidModelName(name, "the name is far too long")
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    tag = DEFAULT_TAG
    if text.rfind(":") > text.rfind("/"):
        text, tag = text.rsplit(":", 1)
    parts = text.split("/")
    if len(parts) > 3:
        raise InvalidModelName(name, "too many '/' (expected [host/][namespace/]model[:tag])")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    else:
        (model,) = parts
    result = ModelName(host, namespace, model, tag)
    for kind in ("host", "namespace", "model", "tag"):
        _check_part(name, kind, getattr(result, kind))
    return result


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


def same_model(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same model (both must be valid).

    >>> same_model("Llama3.2", "registry.ollama.ai/library/llama3.2:latest")
    True
    >>> same_model("llama3.2:1b", "llama3.2")
    False
    """
    return parse_name(a).key == parse_name(b).key

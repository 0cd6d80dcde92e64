"""The layout tells the architecture: imports run one way (front ends -> the public roof ->
services -> the talker -> pure values), with no circle anywhere in ``contextpilot/``; modules
stay under 400 lines and functions under 60 (outside the UI's ``build_*`` builders); a model
name is parsed once, where it enters the library, and travels parsed from there."""

from __future__ import annotations

import ast
import sys
import threading
from pathlib import Path

import pytest

import contextpilot as cp
from contextpilot import names

PACKAGE = Path(cp.__file__).resolve().parent

LAYERS = {  # the top of each layer's module names; a longer match wins
    "contextpilot.ui": 6, "contextpilot.cli": 6, "contextpilot.cli_fleet": 6,
    "contextpilot.__main__": 6,
    "contextpilot": 5,  # the roof: the public API, re-exports only
    "contextpilot.console": 4,  # the text front end, which the roof re-exports
    "contextpilot.chat": 3, "contextpilot.fit": 3, "contextpilot.pull": 3,
    "contextpilot.fleet": 3,
    "contextpilot.hub": 3, "contextpilot.models": 3, "contextpilot.policy": 3,
    "contextpilot.autostart": 3,
    "contextpilot._client": 2, "contextpilot._errortable": 2, "contextpilot.machine": 2,
    "contextpilot.names": 1, "contextpilot.errors": 1, "contextpilot.types": 1,
    "contextpilot.units": 1, "contextpilot.settings": 1, "contextpilot.netaddr": 1,
    "contextpilot.cancel": 1,
}
LAYER_NAMES = {6: "front end", 5: "the roof", 4: "text front end", 3: "service",
               2: "the talker", 1: "pure value"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module ``name`` loads: itself, else the nearest package that exists."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> set[str]:
    """Every contextpilot module ``module`` imports, at the top or inside a function."""
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
            root = ".".join(p for p in (parent, node.module or "") if p)
            # a submodule (``from . import settings``) or a name from the package's roof
            targets = [f"{root}.{a.name}" if f"{root}.{a.name}" in MODULES else root
                       for a in node.names]
        else:
            continue
        out |= {_resolve(t) for t in targets if t.split(".")[0] == "contextpilot"}
    out.discard(module)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def test_every_module_has_a_layer():
    assert {m for m in MODULES if not any(m == k or m.startswith(k + ".") for k in LAYERS)} \
        == set()


def test_imports_run_down_the_layers():
    upward = [f"{m} ({LAYER_NAMES[_layer(m)]}) imports {t} ({LAYER_NAMES[_layer(t)]})"
              for m, targets in GRAPH.items() for t in sorted(targets)
              if _layer(t) > _layer(m)]
    assert upward == []


def _cycle() -> list[str]:
    """One import circle (its modules, in order), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        path.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return []

    for m in sorted(GRAPH):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return []


def test_no_import_circle_anywhere():
    assert _cycle() == []


def test_the_check_finds_a_circle(monkeypatch):
    # The check itself can fail: a circle put back (models -> chat -> models) is found.
    monkeypatch.setitem(GRAPH, "contextpilot.models",
                        GRAPH["contextpilot.models"] | {"contextpilot.chat"})
    assert "contextpilot.chat" in _cycle()


def test_services_need_no_front_end_and_the_talker_no_service():
    assert not GRAPH["contextpilot.pull._disk"] & {"contextpilot.fit", "contextpilot.fit.verdict"}
    assert "contextpilot.pull" not in {_resolve(t) for t in GRAPH["contextpilot.fit.sizes"]}


def _long_ones() -> list[str]:
    out = []
    for module, path in MODULES.items():
        source = path.read_text("utf-8")
        lines = source.count("\n")
        if lines > 400:
            out.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not (
                    node.name.startswith("build_") or node.name.startswith("_build_")):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    out.append(f"{module}.{node.name}: {length} lines")
    return out


def test_modules_and_functions_stay_small():
    assert _long_ones() == []


# -- a name is parsed once ----------------------------------------------------------------

BOUNDARIES = {
    "chat_stream", "check_fit", "pull_model",  # the public entry points under test
    "listed_key",  # names: a name the server listed, parsed where it arrives
    "_by_key",  # the catalog's data file, parsed once per process
    "_names",  # policy: an allowlist
}


class _ParseSpy:
    """Records every call of ``names.parse_name`` with text (not a ModelName), in every
    thread, with the function that called it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._code = names.parse_name.__code__

    def __call__(self, frame, event, arg):
        if event == "call" and frame.f_code is self._code:
            value = frame.f_locals.get("name")
            if isinstance(value, str):
                caller = frame.f_back
                while caller.f_code.co_name.startswith("<") and caller.f_back:  # a comprehension
                    caller = caller.f_back
                self.calls.append((value, caller.f_code.co_name))
        return None

    def __enter__(self):
        sys.setprofile(self)
        threading.setprofile(self)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def _same(text: str, key: str) -> bool:
    try:
        return names.parse_name(text).key == key
    except ValueError:
        return False


def _parses_of(calls: list[tuple[str, str]], model: str) -> list[tuple[str, str]]:
    key = names.parse_name(model).key
    return [(text, caller) for text, caller in calls if _same(text, key)]


def test_check_fit_parses_the_name_once(fake_ollama, machine):
    with _ParseSpy() as spy:
        cp.check_fit("Mistral", fake_ollama.url, probe=False)
    mine = _parses_of(spy.calls, "mistral")
    assert [c for c in mine if c[1] not in BOUNDARIES] == []
    assert [c for c in mine if c[0] == "Mistral"] == [("Mistral", "check_fit")]


def test_chat_with_an_auto_pull_parses_the_name_once(fake_ollama, machine):
    with _ParseSpy() as spy:
        events = list(cp.chat_stream("mistral", [{"role": "user", "content": "hi"}],
                                     host=fake_ollama.url))
    assert isinstance(events[-1], cp.ChatDone)
    mine = _parses_of(spy.calls, "mistral")
    assert [c for c in mine if c[1] not in BOUNDARIES] == []
    assert [c for c in mine if c[0] == "mistral"] == [("mistral", "chat_stream")]


@pytest.mark.parametrize("model", ["mistral", "qwen3:0.6b"])  # new, and already there
def test_a_pull_parses_the_name_once(fake_ollama, machine, model):
    with _ParseSpy() as spy:
        values = list(cp.pull_model(model, fake_ollama.url))
    assert values[-1].done
    mine = _parses_of(spy.calls, model)
    assert [c for c in mine if c[1] not in BOUNDARIES] == []
    assert [c for c in mine if c[0] == model] == [(model, "pull_model")]

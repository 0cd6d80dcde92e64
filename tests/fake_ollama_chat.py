"""/api/chat, /api/generate and /api/embed of the fake Ollama (tests/fake_ollama.py).

The order of the checks is ChatHandler's and GenerateHandler's (server/routes.go): the name,
the cloud proxy, the model on disk (404 ``model '<name>' not found``, the name as sent), an
unload (empty request with keep_alive 0) before any capability check, then thinking, then
scheduleRunner's capabilities (completion, tools), options, the queue and the runner. Answers
stream one line per token and end with a line whose content is "" and which carries
done_reason and the durations; a runner that dies mid-answer ends the stream with an
{"error"} line at status 200.
"""
from __future__ import annotations

import base64
import json
import math
import time
from typing import Optional

from tests.fake_ollama import (BUSY, CLOUD_DISABLED, NO_EMBEDDINGS, FakeModel, Name, _go_time,
                               _Handler, _keep_alive_seconds, _Out, _route, _sha, _tokens,
                               parse_name)

_UNLOADED = object()  # the request was an unload, already answered


def _resolve_for_inference(h: _Handler, req: str, body: dict, kind: str):
    """The model to answer with, _UNLOADED, or None once an error was sent."""
    if not req:
        h._error(400, "model is required")
        return None
    ref = h._model_ref(req)  # parseAndValidateModelRef
    if ref is None:
        return None
    n, _, source = ref
    if source == "cloud":
        return _cloud_target(h, n, body)
    m = h.fake._lookup_installed(n)
    if m is not None and m.remote_host and source == "local":
        m = None
    if m is not None and not m.remote_host and _spurious_not_found(h):
        m = None  # before 0.34.4 a large library sometimes lost an installed model once
    if m is None:
        h._error(404, f"model '{req}' not found")
        return None
    empty = not (body.get("messages") if kind == "chat" else body.get("prompt"))
    if empty and _keep_alive_seconds(body.get("keep_alive")) == 0:
        return _unload(h, req, m, kind)
    if m.remote_host:  # a pulled cloud stub: proxied as well
        return _cloud_target(h, parse_name(m.remote_model), body)
    if not _capable(h, req, n, m, body, kind) or not _scheduled(h, body) or _raced(h, req, n):
        return None
    return m


def _spurious_not_found(h: _Handler) -> bool:
    faults = h.fake.faults
    with h.fake._lock:
        if faults.spurious_not_found > 0:
            faults.spurious_not_found -= 1
            return True
    return False


def _unload(h: _Handler, req: str, m: FakeModel, kind: str):
    h.fake._load(m, 0)
    h._json(200, {"model": req, "created_at": _go_time(time.time()), **_empty(kind),
                  "done": True, "done_reason": "unload"})
    return _UNLOADED


def _empty(kind: str) -> dict:
    return {"message": {"role": "assistant", "content": ""}} if kind == "chat" else {"response": ""}


def _capable(h: _Handler, req: str, n: Name, m: FakeModel, body: dict, kind: str) -> bool:
    """The thinking check, then scheduleRunner's CheckCapabilities (completion before tools)."""
    think = body.get("think")
    if think not in (None, False) and not m.thinking:
        h._error(400, f"{json.dumps(req)} does not support thinking")
    elif "completion" not in m.capabilities:  # an embedding model
        h._error(400, f"{json.dumps(req)} does not support {kind}")
    elif body.get("tools") and "tools" not in m.capabilities:
        h._error(400, f"{n.full} does not support tools")
    elif _option_error(body.get("options")):
        h._error(500, _option_error(body.get("options")))
    else:
        return True
    return False


def _raced(h: _Handler, req: str, n: Name) -> bool:
    """The race: GetModel saw it, then it was deleted before the scheduler loaded it."""
    if not h.fake.faults.remove_before_chat:
        return False
    h.fake.faults.remove_before_chat = False
    with h.fake._lock:
        h.fake._installed.pop(n.key, None)
    h._error(404, f"model {json.dumps(req)} not found, try pulling it first")
    return True


def _cloud_target(h: _Handler, base: Name, body: dict):
    """The cloud proxy (server/cloud_proxy.go): switched off, not signed in, or ollama.com's
    own answer for the base name."""
    fake = h.fake
    if fake.cloud_disabled:
        h._error(403, CLOUD_DISABLED)
        return None
    if not fake.signed_in:
        answer = {"error": "unauthorized"}
        if fake.signin_url:
            answer["signin_url"] = fake.signin_url
        h._json(401, answer)
        return None
    with fake._lock:
        m = fake._cloud.get(base.key)
    if m is None:
        h._error(404, f"model '{base.short}' not found")
        return None
    return m if _scheduled(h, body) else None


def _scheduled(h: _Handler, body: dict) -> bool:
    """scheduleRunner's failures, before any token: 503 busy, or chat_fail (500 runner, 499)."""
    faults = h.fake.faults
    with h.fake._lock:
        busy = faults.busy > 0
        if busy:
            faults.busy -= 1
    if busy:
        h._error(503, BUSY)
        return False
    if faults.chat_fail is not None:
        status, msg = faults.chat_fail
        # a runner that fails in Completion reaches streamResponse, which sets a bare
        # application/json before the status; scheduling errors come from c.JSON
        streamed = status == 500 and body.get("stream") is not False
        h._json(status, {"error": msg}, "application/json" if streamed else
                "application/json; charset=utf-8")
        return False
    return True


def _bad_think(v) -> Optional[str]:
    """api.ThinkValue.UnmarshalJSON: a bool or one of four strings; ShouldBindJSON -> 400."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, str):
        if v in ("high", "medium", "low", "max"):
            return None
        return (f'invalid think value: {json.dumps(v)} (must be "high", "medium", "low", '
                f'"max", true, or false)')
    return 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'


_INT_OPTIONS = ("num_ctx", "num_predict", "num_keep", "seed", "top_k", "repeat_last_n",
                "num_batch", "num_gpu", "main_gpu", "num_thread")


def _option_error(options) -> Optional[str]:
    """api.Options.FromMap: an integer option that is not a JSON number (500, from
    handleScheduleError's default case, after the model was found)."""
    for key in _INT_OPTIONS:
        v = (options or {}).get(key) if isinstance(options, dict) else None
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"option {json.dumps(key)} must be of type integer"
    return None


def _num_ctx(body: dict):
    return (body.get("options") or {}).get("num_ctx")


@_route
def h_chat(self, body):
    with self.fake._lock:
        self.fake.chat_requests.append(body)
    if _bad_think(body.get("think")):
        return self._error(400, _bad_think(body.get("think")))
    req = body.get("model") or ""
    messages = body.get("messages") or []
    m = _resolve_for_inference(self, req, body, "chat")
    if m is None or m is _UNLOADED:
        return
    for msg in messages:
        for img in msg.get("images") or []:
            try:
                base64.b64decode(img, validate=True)
            except (ValueError, TypeError):
                return self._error(400, "illegal base64 data at input byte 0")
    self.fake._load(m, body.get("keep_alive"), _num_ctx(body))
    if not messages:  # an empty chat loads the model
        return self._json(200, {"model": req, "created_at": _go_time(time.time()),
                                **_empty("chat"), "done": True, "done_reason": "load"})
    thinking, text = m.answer(messages)
    use_thinking = m.thinking and body.get("think") is not False  # think defaults on
    _stream_answer(self, body, req, thinking if use_thinking else "", text, lambda t, c: {
        "role": "assistant", "content": c, **({"thinking": t} if t else {})}, chat=True)


@_route
def h_generate(self, body):
    req = body.get("model") or ""
    m = _resolve_for_inference(self, req, body, "generate")
    if m is None or m is _UNLOADED:
        return
    prompt = body.get("prompt") or ""
    self.fake._load(m, body.get("keep_alive"), _num_ctx(body))
    if not prompt:
        return self._json(200, {"model": req, "created_at": _go_time(time.time()),
                                **_empty("generate"), "done": True, "done_reason": "load"})
    thinking, text = m.answer([{"role": "user", "content": prompt}])
    use_thinking = m.thinking and body.get("think") is not False
    _stream_answer(self, body, req, thinking if use_thinking else "", text, None, chat=False)


def _budgeted(body: dict, thinking: str, text: str) -> tuple:
    """options.num_predict: generation stops after that many tokens (thinking counts), and
    the final line says done_reason "length" (llm/server.go)."""
    budget = (body.get("options") or {}).get("num_predict")
    budget = budget if isinstance(budget, int) and budget > 0 else None
    thought, words = _tokens(thinking), _tokens(text)
    if budget is None:
        return thought, words, False
    cut = len(thought) + len(words) > budget
    thought = thought[:budget]
    return thought, words[:max(budget - len(thought), 0)], cut


def _stream_answer(h: _Handler, body: dict, req: str, thinking: str, text: str, mkmsg, chat: bool):
    fake, faults = h.fake, h.fake.faults
    start = time.monotonic_ns()
    out = _Out(h, body.get("stream") is not False, fake.token_delay)

    def said(t: str, c: str) -> dict:  # what a line says: a message, or a response
        if chat:
            return {"message": mkmsg(t, c)}
        return {"response": c, **({"thinking": t} if t else {})}

    def piece(t: str, c: str, done: bool = False) -> dict:
        return {"model": req, "created_at": _go_time(time.time()), **said(t, c), "done": done}

    try:
        if faults.chat_first_token_delay:
            h._wait(faults.chat_first_token_delay)  # model loading: silence before first token
        load_ns = time.monotonic_ns() - start
        thought, words, cut = _budgeted(body, thinking, text)
        thinking, text = "".join(thought), "".join(words)
        for tok in thought:
            out.emit(piece(tok, ""))
        for sent, tok in enumerate(words):
            if faults.drop_chat_after is not None and sent >= faults.drop_chat_after:
                h._abort()
            if faults.chat_error_after is not None and sent >= faults.chat_error_after[0]:
                return out.error(faults.chat_error_after[1])  # the runner died mid-answer
            out.emit(piece("", tok))
        final = piece("", "", done=True)
        final["done_reason"] = "length" if cut else "stop"
        if not chat:  # the deprecated context: the prompt and answer as token ids
            final["context"] = [int(_sha(w)[:4], 16) % 32000 for w in ["<s>", *words]]
        final.update({"total_duration": time.monotonic_ns() - start,
                      "load_duration": max(1, load_ns), "prompt_eval_count": 26,
                      "prompt_eval_duration": 1_000_000, "eval_count": len(thought) + len(words),
                      "eval_duration": max(1, time.monotonic_ns() - start - load_ns)})
        if out.stream:
            out.emit(final)
            out.finish()
        else:  # non-streamed: one JSON with everything concatenated
            final.update(said(thinking, text))
            out.finish(final)
    finally:
        out.close()


@_route
def h_embed(self, body):
    """EmbedHandler: a completion-only model gets llama-server's 501 passed through."""
    req = body.get("model") or ""
    ref = self._model_ref(req)
    if ref is None:
        return None
    n, _, source = ref
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) and inputs else inputs or []
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        return self._error(400, "invalid input type")
    m = _cloud_target(self, n, body) if source == "cloud" else self.fake._lookup_installed(n)
    if m is None:
        return None if source == "cloud" else self._error(404, f"model '{req}' not found")
    if source != "cloud" and not _scheduled(self, body):
        return None
    self.fake._load(m, body.get("keep_alive"))
    if not inputs:
        return self._json(200, {"model": req, "embeddings": []})
    if "embedding" not in m.capabilities:
        return self._error(501, NO_EMBEDDINGS)
    self._json(200, {"model": req, "embeddings": [_embedding(t) for t in inputs],
                     "total_duration": 14_143_917, "load_duration": 1_019_500,
                     "prompt_eval_count": sum(len(_tokens(t)) for t in inputs)})


def _embedding(text: str, dims: int = 8) -> list:
    raw = [int(_sha(f"{text}{i}")[:6], 16) / 0xFFFFFF - 0.5 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]

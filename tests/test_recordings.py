"""Every recording of a real Ollama (tests/data/ollama-real/, see its README) replayed against
the fake: the recorded request, sent to a fake put in the same state (installed or not,
loaded or not, the scenario's fault), must get the same status, the same Content-Type and
lines of the same shape: the same keys with values of the same types, the same statuses
(``pulling <12 hex>`` as a pattern), ``done``/``done_reason``, and the same error texts once
ports, digests and paths are normalised.

Consecutive lines of the same shape are compared as runs. The runs must come in the same
order; their lengths must match, except the answer tokens (the model's own length), the
climbing progress ticks (within 25 %: they depend on the registry's pace, which the fake
copies) and the identical ticks while a download waits (within 40 %: they depend on the
clock). The long pulls run on a clock sped up SCALE times (60 ms ticks become 60 ms x SCALE,
the 30 s stall timeout 30 s x SCALE...), so the 57 recordings replay in a few seconds.
"""
from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

import httpx
import pytest

from tests.fake_ollama import FakeModel, FakeOllama, parse_name

DATA = Path(__file__).parent / "data" / "ollama-real"
RECORDINGS = sorted(DATA.glob("*.json"))
SCALE = 0.03
TICK_BYTES = 9_000  # the recording's registry sent 150,000 B/s: 9,000 bytes a 60 ms tick
TICK = 0.06

# The recorded model: a 1.6 M-parameter llama GGUF with random weights (its README).
TINY_LAYERS = [1_025_152, 80, 91, 75, 487]  # weights, template, license, params, config
TINY_INFO = {
    "general.architecture": "llama", "general.description": "random-weight test model",
    "general.file_type": 15, "general.parameter_count": 1604864,
    "general.quantization_version": 2, "llama.attention.head_count": 4,
    "llama.attention.head_count_kv": 2, "llama.attention.layer_norm_rms_epsilon": 1e-05,
    "llama.block_count": 2, "llama.context_length": 4096, "llama.embedding_length": 256,
    "llama.feed_forward_length": 512, "llama.rope.dimension_count": 64,
    "llama.rope.freq_base": 10000, "llama.vocab_size": 828, "tokenizer.ggml.add_bos_token": True,
    "tokenizer.ggml.add_eos_token": False, "tokenizer.ggml.bos_token_id": 1,
    "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.model": "llama",
    "tokenizer.ggml.pre": "default", "tokenizer.ggml.scores": [0, 0, -1000.5],
    "tokenizer.ggml.token_type": [2, 3, 3], "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>"],
    "tokenizer.ggml.unknown_token_id": 0}
WORDS = "class and street asked hard once line west name voice states use force they near".split()


def tiny(name: str, words: int = 40) -> FakeModel:
    stops = ("<|system|>", "<|user|>", "<|assistant|>", "</s>")
    return FakeModel(
        name=name, layers=list(TINY_LAYERS), family="llama", parameter_size="1.60M",
        quantization="Q4_K_M", capabilities=["completion"], context_length=4096,
        embedding_length=256, model_info=dict(TINY_INFO),
        license="Random-weight test model made for local verification.\n",
        template="{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}</s>\n{{ end }}<|assistant|>\n",
        parameters="\n".join([f'{"stop":<30} "{s}"' for s in stops] + [f'{"num_predict":<30} 256']),
        reply=lambda messages: " ".join(WORDS[i % len(WORDS)] for i in range(words)))


# --------------------------------------------------------------------------- the states
def nothing(fake: FakeOllama, name: str):
    """An empty OLLAMA_MODELS; the registry has nothing either."""


def in_registry(fake: FakeOllama, name: str):
    host = parse_name(name).host
    fake.add_remote(tiny(f"{host}/library/tiny:latest"))
    fake.add_remote(FakeModel(name=f"{host}/library/tiny:f16",
                              layers=[3_210_000, 80, 91, 75, 487], family="llama"))
    fake.plain_http_registries.add(host)  # the recording registry spoke plain HTTP
    fake.scale_time(SCALE, TICK_BYTES)


def installed(fake: FakeOllama, name: str):
    fake.add_installed(tiny(name))
    fake.on_gpu = False  # a CPU-only machine


def loaded(fake: FakeOllama, name: str):
    installed(fake, name)
    fake.load(name)


def cloud_off(fake: FakeOllama, name: str):
    fake.cloud_disabled = True  # OLLAMA_NO_CLOUD=1


def copy_installed(fake: FakeOllama, name: str):
    fake.add_installed(tiny("tiny-copy:latest"))


def runner_killed(fake: FakeOllama, name: str, rec: dict):
    fake.add_installed(tiny(name, words=len(rec["body_lines"]) + 100))
    fake.faults.runner_dies(len(rec["body_lines"]) - 1)  # every line but the error: a token


def registry_down(fake: FakeOllama, name: str):
    in_registry(fake, name)
    fake.faults.registry_down = True


def cancelled_at_375000(fake: FakeOllama, name: str):
    in_registry(fake, name)
    fake.set_on_disk(name, 375_000)  # the part file the cancelled pull left


def digest_mismatch(fake: FakeOllama, name: str):
    in_registry(fake, name)
    fake.tick_bytes = 10**9  # an unpaced registry: every blob arrives within one tick
    fake.faults.digest_mismatch = True


def dropped_once(fake: FakeOllama, name: str):
    in_registry(fake, name)
    fake.set_on_disk(name, 0, 80, 91, 75, 487)  # the small blobs came with an earlier pull
    fake.faults.registry_drop_at = 300_000


def no_location(fake: FakeOllama, name: str):
    in_registry(fake, name)
    fake.faults.blob_without_location = True


def stalled_once(fake: FakeOllama, name: str):
    in_registry(fake, name)
    fake.faults.registry_stall_at = 300_000


def registry_dies(fake: FakeOllama, name: str):
    in_registry(fake, name)
    port = parse_name(name).host.rsplit(":", 1)[1]  # its storage host: localhost, same port
    fake.blob_url = lambda n, digest: f"http://localhost:{port}/cdn/{digest}"
    fake.faults.registry_gone_at = 300_000


# scenario -> the state the fake is in before the request
STATES: dict[str, Callable] = {
    "root-get": nothing, "root-head": nothing, "version": nothing,
    "status-cloud-disabled": cloud_off, "status-cloud-default": nothing,
    "tags-empty": nothing, "ps-empty": nothing, "show-missing": nothing,
    "chat-not-installed": nothing, "chat-not-installed-nostream": nothing,
    "generate-not-installed": nothing, "pull-missing-tag": in_registry,
    "pull-missing-model": in_registry, "pull-missing-tag-nostream": in_registry,
    "pull-http-without-insecure": in_registry, "pull-http-scheme-without-insecure": in_registry,
    "pull-invalid-name": nothing, "pull-empty-body": nothing, "pull-no-body": nothing,
    "pull-cancel-midway": in_registry, "pull-resume-after-cancel": cancelled_at_375000,
    "pull-repull-installed": installed, "tags-after-pull": installed,
    "show-installed": installed, "show-installed-verbose": installed,
    "chat-stream-system": installed, "ps-loaded": loaded, "chat-load-empty-messages": installed,
    "chat-stream-warm": loaded, "chat-nostream": loaded, "chat-greedy-length": loaded,
    "chat-think-true": loaded, "chat-think-false": loaded, "chat-tools": loaded,
    "generate-stream": loaded, "generate-nostream": loaded, "embed-unsupported": loaded,
    "generate-unload": loaded, "ps-after-unload": installed,
    "chat-runner-killed-midstream": runner_killed, "ps-after-runner-killed": loaded,
    "chat-after-runner-killed": installed, "generate-unload-2": loaded, "copy": installed,
    "delete-copy": copy_installed, "delete-first": installed, "delete-second": nothing,
    "tags-after-delete": nothing, "pull-nostream-success": in_registry,
    "pull-registry-down": registry_down, "pull-registry-down-nostream": registry_down,
    "pull-digest-mismatch": digest_mismatch, "pull-connection-dropped-once": dropped_once,
    "pull-blob-served-directly": no_location, "pull-blob-redirect-same-host": no_location,
    "pull-stall-once": stalled_once, "pull-registry-dies-midway": registry_dies,
}
# Short waits get a slower clock than SCALE, so that a busy machine does not blur them.
SCALES = {"pull-cancel-midway": 0.2, "pull-resume-after-cancel": 0.1,
          "pull-connection-dropped-once": 0.1}
HANG_UP = {"pull-cancel-midway"}
"""The client hung up (after 2.5 s): we hang up after as many lines as it read, so that a busy
machine, whose ticker runs late, reads the same stream."""
DEFAULT_NAME = "127.0.0.1:40013/library/tiny:latest"


# --------------------------------------------------------------------------- replaying
def replay(fake: FakeOllama, request: dict, hang_up_after: Optional[int]) -> tuple:
    """(status, Content-Type, lines parsed as JSON where they are, when each line came);
    with ``hang_up_after``, the connection is closed after that many lines."""
    body = request["body"]
    content = None if body is None else json.dumps(body)
    lines, times = [], []
    start = time.monotonic()
    with httpx.Client(base_url=fake.url, timeout=30) as client:
        with client.stream(request["method"], request["path"], content=content) as r:
            for text in r.iter_lines():
                if text:
                    lines.append(_parse(text))
                    times.append(time.monotonic() - start)
                if hang_up_after is not None and len(lines) >= hang_up_after:
                    break
            return r.status_code, r.headers.get("content-type"), lines, times


def _parse(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def normalise(text: str) -> str:
    """Error texts without what differs between runs: ports, digests, server paths."""
    text = re.sub(r"sha256[:-][0-9a-f]{64}", "sha256:<digest>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<hex>", text)
    text = re.sub(r":\d{2,5}\b", ":<port>", text)
    return re.sub(r"/[^\s\"']*/\.ollama", "<home>/.ollama", text)


def shape(value):
    """Keys and value types, recursively; a list is the set of its items' shapes."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return ["list", sorted({json.dumps(shape(v), sort_keys=True) for v in value})]
    return type(value).__name__


def facts(line, seen: dict) -> dict:
    """What must be equal, beyond the shape. `seen`: each layer's last `completed`."""
    if not isinstance(line, dict):
        return {"text": line}
    out = {k: normalise(line[k]) if isinstance(line[k], str) else line[k]
           for k in ("status", "error", "done", "done_reason") if k in line}
    if isinstance(line.get("message"), dict):
        out["role"] = line["message"].get("role")
    if "cloud" in line:
        out["cloud"] = line["cloud"]
    if "digest" in line and "total" in line:
        out["progress"] = progress_kind(line, seen)
    return out


def progress_kind(line: dict, seen: dict) -> str:
    done, total, digest = line.get("completed", 0), line["total"], line["digest"]
    before = seen.get(digest)
    seen[digest] = done
    if done == total:
        return "complete"
    if before is None:
        return "first"
    return "up" if done > before else "same" if done == before else "down"


def runs(lines: list) -> list:
    """[description, count] for each run of lines alike in shape and facts."""
    seen: dict = {}
    out: list = []
    for line in lines:
        key = json.dumps({"shape": shape(line), "facts": facts(line, seen)}, sort_keys=True)
        if out and out[-1][0] == key:
            out[-1][1] += 1
        else:
            out.append([key, 1])
    return out


def same_length(key: str, want: int, got: int) -> bool:
    f = json.loads(key)["facts"]
    if f.get("done") is False:  # answer tokens: how long the model talks
        return got >= 1
    if f.get("progress") == "up":  # climbing ticks: the registry's pace
        return abs(got - want) <= 0.25 * want
    if f.get("progress") == "same":  # identical ticks while waiting: the clock
        return abs(got - want) <= 0.4 * want
    return got == want


def disagreements(rec: dict, got: tuple) -> list:
    status, ctype, lines, _ = got
    problems = []
    if status != rec["status"]:
        problems.append(f"status {status}, real {rec['status']}")
    if ctype != rec["headers"].get("Content-Type"):
        problems.append(f"Content-Type {ctype!r}, real {rec['headers'].get('Content-Type')!r}")
    want, have = runs(rec["body_lines"]), runs(lines)
    if [k for k, _ in want] != [k for k, _ in have]:
        problems.append("lines differ:\n  real: " + "\n        ".join(
            f"{n} x {_brief(k)}" for k, n in want) + "\n  fake: " + "\n        ".join(
            f"{n} x {_brief(k)}" for k, n in have))
        at = next(i for i, (w, h) in enumerate(zip(want + [["{}", 0]], have + [["{}", 0]]))
                  if w[0] != h[0])
        problems += [f"  run {at + 1}, at {where}: real {a}, fake {b}" for where, a, b in
                     _differences(json.loads((want + [["{}", 0]])[at][0]),
                                  json.loads((have + [["{}", 0]])[at][0]))][:8]
    else:
        problems += [f"{g} lines of {k}, real {w}" for (k, w), (_, g) in zip(want, have)
                     if not same_length(k, w, g)]
    return problems


def _brief(key: str) -> str:
    d = json.loads(key)
    return json.dumps(d["facts"]) + " " + (key if len(key) < 160 else key[:157] + "...")


def _differences(a, b, path: str = "") -> list:
    """(where, real, fake) for each place two descriptions differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    if _one_kind(a) and _one_kind(b):  # lists of one kind of item: compare the items
        return _differences(json.loads(a[1][0]), json.loads(b[1][0]), f"{path}[]")
    return [] if a == b else [(path or ".", json.dumps(a)[:120], json.dumps(b)[:120])]


def _one_kind(s) -> bool:
    return isinstance(s, list) and len(s) == 2 and s[0] == "list" and len(s[1]) == 1


# --------------------------------------------------------------------------- pull rules
def layer_lines(lines: list) -> list:
    return [x for x in lines if isinstance(x, dict) and "digest" in x and "total" in x]


def no_final_tick(lines: list) -> bool:
    """A downloaded layer's last report stays below its size (complete lines are cache hits)."""
    last = {}
    for x in layer_lines(lines):
        if x.get("completed", 0) < x["total"]:
            last[x["digest"]] = x
    return all(x.get("completed", 0) < x["total"] for x in last.values())


def restarts_near_zero(lines: list) -> bool:
    seen: dict = {}
    drops = [x for x in layer_lines(lines) if progress_kind(x, seen) == "down"]
    return all(x.get("completed", 0) < 0.05 * x["total"] for x in drops)


def tick_gaps(lines: list, times: list) -> list:
    at = [t for x, t in zip(lines, times) if layer_lines([x])]
    return [b - a for a, b in zip(at, at[1:])]


# --------------------------------------------------------------------------- the test
def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_recording_has_a_state():
    assert {p.stem for p in RECORDINGS} == set(STATES)
    assert len(RECORDINGS) == 57


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_the_fake_answers_as_the_real_server_did(path):
    rec = load(path)
    setup, scale = STATES[path.stem], SCALES.get(path.stem, SCALE)
    body = rec["request"]["body"] or {}
    name = body.get("model") or body.get("source") or DEFAULT_NAME
    with FakeOllama() as fake:
        if setup is runner_killed:
            setup(fake, name, rec)
        else:
            setup(fake, name)
        if fake.ticker:
            fake.scale_time(scale)
        hang_up = len(rec["body_lines"]) if path.stem in HANG_UP else None
        got = replay(fake, rec["request"], hang_up)
        assert not disagreements(rec, got), "\n".join(disagreements(rec, got))
        _, _, lines, times = got
        if layer_lines(rec["body_lines"]):
            assert no_final_tick(lines) and no_final_tick(rec["body_lines"])
            assert restarts_near_zero(lines) and restarts_near_zero(rec["body_lines"])
        gaps = tick_gaps(lines, times)
        if len(gaps) >= 20:  # the 60 ms cadence, sped up
            assert 0.4 * TICK * scale <= statistics.median(gaps) <= 2.5 * TICK * scale, gaps
        if path.stem == "pull-resume-after-cancel":  # the first report is past the partial
            assert layer_lines(lines)[0]["completed"] > 375_000
        if path.stem == "pull-cancel-midway":  # the partial is what the client saw last
            assert fake.disconnected.wait(10)  # the fake saw the hang-up and kept its part
            last = layer_lines(lines)[-1]["completed"]
            assert last <= fake.partial_bytes(name) <= last + 2 * TICK_BYTES

"""A fake Ollama server speaking the real wire protocol, for tests.

Everything here mirrors ollama/ollama's Go server (server/routes.go, server/images.go,
server/download.go, types/model/name.go, api/types.go): status codes, error texts,
NDJSON streaming with `Transfer-Encoding: chunked`, omitempty fields. It is a real
HTTP/1.1 server on 127.0.0.1 so clients exercise their real transport (keep-alive,
refused connections, sockets dropped mid-stream). Standard library only. It agrees with
the recordings of a real server (v0.33.0-rc2) in tests/data/ollama-real/, which
tests/test_recordings.py replays against it.

Three modules: this one (names, models, the server, the small routes), fake_ollama_pull.py
(/api/pull: download.go's ticker and the registry's faults) and fake_ollama_chat.py
(/api/chat, /api/generate, /api/embed). ``from tests.fake_ollama import FakeOllama,
FakeModel`` is all a test needs.

State
  add_installed(m) / add_remote(m) / add_cloud(m)  on disk / in the registry / on ollama.com
  set_on_disk(name, *layer_bytes)   bytes of each blob already on disk (a partial to resume)
  load(name, keep_alive=None)       in memory, as a chat would leave it (/api/ps)
  installed_names(), partial_bytes(name), release() (ends a stall_pull_after hold)
  requests, chat_requests, pull_requests, disconnects, disconnected, open_streams: counters

Settings (attributes of FakeOllama)
  version = "0.33.0"          what /api/version says
  name_part_max = 80          longest namespace/model/tag; 128 as releases 0.34-0.40 allow
  signed_in, signin_url       ollama.com sign-in (401 {"error":"unauthorized","signin_url"})
  cloud_disabled, cloud_source   OLLAMA_NO_CLOUD=1: 403 for cloud models, and /api/status
                              says {"cloud":{"disabled":true,"source":"env"}}
  has_status = True           False: a server older than v0.16.2 (no /api/status, 404)
  on_gpu = True               False: /api/ps says size_vram 0 (a CPU-only server)
  router = False              True: a router in front (Olla): chat, generate, tags, ps pass
                              through; pull/push/create/copy/delete answer 501 text/plain
                              "model management operations not supported by proxy", show
                              501 "model show not supported in multi-instance proxy"
  recommendations = None      a list: serve /api/experimental/model-recommendations
  token_delay = 0.0           seconds between answer tokens

Pace of a pull. download.go's Wait() reports the bytes so far on a ticker: the same value
again while nothing arrives, no final completed == total report (a layer's last line stays
below its size), no line at all for a layer done within one tick, one complete line for a
layer already on disk. Both paces below follow those rules.
  chunk_size = 64_000, event_delay = 0.0   default pace: a tick every event_delay seconds
                              brings chunk_size bytes (event_delay is also the pause before
                              each other line)
  ticker = False, tick = 0.06, tick_bytes, tick_repeats   ticker=True: a tick every `tick`
                              seconds brings tick_bytes; each value is sent tick_repeats times
  time_scale = 1.0            multiplies the server's own waits: the 30 s stall timeout, the
                              1, 2, 4 ... 32 s retry sleeps (ticks while waiting: every `tick`)
  scale_time(s, tick_bytes)   the real cadence s times faster: ticker on, tick 0.06*s,
                              time_scale s (counts of identical ticks stay the real ones)
  plain_http_registries       registry hosts that speak plain HTTP: without "insecure" a pull
                              fails in-stream with "tls: first record does not look like a
                              TLS handshake" (v0.33 never answers 500 insecure protocol)
  blob_url(name, digest)      where the registry redirects a blob; by default a ~450-char
                              signed storage URL (X-Amz-Signature...) as ollama.com's does
  models_dir                  the server's model path, as error texts show it

Faults: fake.faults.<switch>; faults.reset() turns every one off
  refuse                      nothing listens (the same port again when switched back)
  Between the client and Ollama:
  drop_pull_after = N         cut the socket once the pull reaches byte N (partial kept)
  stall_pull_after = N        hold the stream at byte N until fake.release(): silent, or
    stall_repeat = True       repeating the last line every tick
  drop_chat_after = N         cut the socket after N answer tokens
  chat_first_token_delay = s  silence before the first token (a model loading)
  In the registry (the stream is 200 and already started; errors are {"error"} lines):
  registry_down               pull model manifest: Get "<scheme>://<host>/v2/.../manifests/
                              <tag>": <dial error> (Go's: "dial tcp <ip:port>: connect:
                              connection refused" for an address, "dial tcp: lookup <host>:
                              no such host" for a name)
  registry_drop_at = N        the blob connection drops once at byte N: the same completed
                              repeats for 1 s (x time_scale), then the part goes on (clears)
  registry_stall_at = N       bytes stop at N once: identical ticks for 30 s (x time_scale),
                              then the part restarts from its start, completed drops back
                              near 0 and climbs again (clears itself)
  registry_gone_at = N        the storage host dies at byte N: identical ticks for 63 s
                              (1+2+...+32 s of retries, x time_scale), then "max retries
                              exceeded: Get "<blob_url>": <dial error>" (clears itself;
                              the partial stays)
  regress                     a part restarts once from its start without the wait (the
                              completed value drops back once, then climbs)
  blob_without_location       the registry serves blobs itself: "http: no Location header
                              in response" right after the manifest
  digest_mismatch             after "verifying sha256 digest": "digest mismatch, file must
                              be downloaded again: want sha256:..., got sha256:..." (the blob
                              is removed, as Ollama does)
  disk_full()                 "write <models_dir>/blobs/sha256-<hex>-partial: no space left
                              on device" after the first tick (pull_error: any such text)
  pull_error_line = {...}     this dict as the last pull line (the newer client's
                              {"code": "not_found", "error": ...})
  end_without_success         the stream ends after "writing manifest"
  safetensors                 one aggregate "pulling model" shape (digest sha256:model)
  In the runner and scheduler:
  busy = N                    the next N chats/generates/embeds: 503 server busy
  chat_fail = (status, msg)   fail before the first token (500 runner stopped, 499...)
  chat_error_after = (n, msg)  an {"error"} line after n tokens; runner_dies(n) is the real
                              "an error was encountered while running the model:
                              unexpected EOF" (the model stays listed in /api/ps)
  remove_before_chat          the load-time race: 404 model "x" not found, try pulling it first
  spurious_not_found = N      the next N chats/generates to an installed model answer 404
                              model '<name>' not found (servers before 0.34.4 with large
                              libraries did this once)

Models: FakeModel(capabilities=[...]) decides the 400s: no "completion" (["embedding"]):
'"<name>" does not support chat' (or generate); no "tools": '<full name> does not support
tools'; no "thinking": '"<name>" does not support thinking'. /api/embed on a model without
"embedding" answers 501 "This server does not support embeddings. Start it with
`--embeddings`" (llama-server's words, passed through).
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as _dt
import hashlib
import json
import re
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

VERSION = "0.33.0"
DEFAULT_HOST, DEFAULT_NS, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
INVALID_NAME = "invalid model name"  # types/errtypes InvalidModelNameErrMsg
CONFLICTING = "use either :local or :cloud, not both"  # internal/modelref
BUSY = "server busy, please try again.  maximum pending requests exceeded"  # server/sched.go
RUNNER_STOPPED = ("model runner has unexpectedly stopped, this may be due to resource "
                  "limitations or an internal error, check ollama server logs for details")
CLOUD_DISABLED = "ollama cloud is disabled: remote model is unavailable"  # internal/cloud
SIGNIN_URL = "https://ollama.com/connect?name=fake-host&key=c3NoLWVkMjU1MTkgQUFBQQ"
RUNNER_EOF = "an error was encountered while running the model: unexpected EOF"  # in-stream
NO_EMBEDDINGS = "This server does not support embeddings. Start it with `--embeddings`"  # 501
PART_MAX = 80  # types/model/name.go in v0.33: namespace, model and tag up to 80 characters
PART_MAX_NEWER = 128  # releases 0.34-0.40 allow 128
ROUTER_501 = "model management operations not supported by proxy\n"  # Olla: http.Error
ROUTER_SHOW_501 = "model show not supported in multi-instance proxy\n"


# --------------------------------------------------------------------------- names
@dataclasses.dataclass(frozen=True)
class Name:
    """types/model/name.go: host/namespace/model:tag with defaults merged in."""
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def valid(self) -> bool:
        return self.valid_for(PART_MAX)

    def valid_for(self, part_max: int) -> bool:
        """Valid with namespace/model/tag of at most ``part_max`` characters (80 in v0.33)."""
        return all(_valid_part(k, v, part_max) for k, v in
                   (("host", self.host), ("ns", self.namespace), ("model", self.model), ("tag", self.tag)))

    @property
    def full(self) -> str:  # Name.String()
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def short(self) -> str:  # Name.DisplayShortest(), what /api/tags calls `name`
        if self.host.lower() == DEFAULT_HOST:
            if self.namespace.lower() == DEFAULT_NS:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return self.full

    @property
    def key(self) -> str:  # Ollama compares names case-insensitively
        return self.full.lower()


_PART_RE = {  # the first character, then the rest; the host may be 350 long in every release
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*"),
    "ns": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*"),
}


def _valid_part(kind: str, v: str, part_max: int = PART_MAX) -> bool:
    limit = 350 if kind == "host" else part_max
    return 0 < len(v) <= limit and _PART_RE[kind].fullmatch(v) is not None


def parse_name(s: str) -> Name:
    """ParseNameBare + Merge(DefaultName()); an empty part present in the input is invalid.
    An "@" is no part's character, so a name with a digest is invalid."""
    host = ns = model = tag = None
    if s.rfind(":") > s.rfind("/"):
        s, tag = s.rsplit(":", 1)
    if "/" in s:
        s, model = s.rsplit("/", 1)
        if "/" in s:
            s, ns = s.rsplit("/", 1)
            host = s.split("://", 1)[-1]
        else:
            ns = s
    else:
        model = s
    return Name(DEFAULT_HOST if host is None else host, DEFAULT_NS if ns is None else ns,
                model or "", DEFAULT_TAG if tag is None else tag)


def source_suffix(raw: str) -> tuple:
    """internal/modelref parseSourceSuffix: (base, "cloud" | "local" | "")."""
    idx = raw.rfind(":")
    if idx >= 0:
        suffix_raw = raw[idx + 1:].strip()
        suffix = suffix_raw.lower()
        if suffix in ("cloud", "local"):
            return raw[:idx], suffix
        if "/" not in suffix_raw and suffix.endswith("-cloud"):
            return raw[:idx + 1] + suffix_raw[:-len("-cloud")], "cloud"
    return raw, ""


class Conflict(ValueError):
    pass


def parse_ref(raw: str) -> tuple:
    """modelref.ParseRef: (base, source); Conflict for both suffixes at once."""
    raw = raw.strip()
    base, source = source_suffix(raw)
    if source and source_suffix(base)[1]:
        raise Conflict(CONFLICTING)
    return base, source


def pull_name(raw: str) -> str:
    """modelref.NormalizePullName: gpt-oss:20b:cloud -> gpt-oss:20b-cloud, qwen3:cloud stays."""
    base, source = parse_ref(raw)
    if source != "cloud":
        return base
    return base + ("-cloud" if base.rfind(":") > base.rfind("/") else ":cloud")


# --------------------------------------------------------------------------- models
def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _go_time(t: float) -> str:
    """RFC 3339 with nanoseconds (trailing zeros trimmed) and Z, as Go marshals a UTC
    time.Time (time.RFC3339Nano)."""
    ns = int(round(t * 1e9))
    whole = _dt.datetime.fromtimestamp(ns // 1_000_000_000, _dt.timezone.utc)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return whole.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


STORAGE_HOST = "3f9c2b7e81d64a05b6e2c9d1a4f87e30.r2.cloudflarestorage.com"


def signed_blob_url(name: "Name", digest: str) -> str:
    """Where registry.ollama.ai redirects a blob: a presigned storage URL, ~450 characters of
    query parameters a user must never see (this one is made up, with the real layout)."""
    hexd = digest.split(":", 1)[-1]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return (f"https://{STORAGE_HOST}/ollama/docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}"
            f"/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={_sha(name.full)[:32]}"
            f"%2F{stamp[:8]}%2Fauto%2Fs3%2Faws4_request&X-Amz-Date={stamp}&X-Amz-Expires=86400"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={_sha(hexd + stamp)}")


def _progress(status, digest, total, completed):
    """api.ProgressResponse: `total`/`completed,omitempty`."""
    p = {"status": status, "digest": digest}
    if total:
        p["total"] = total
    if completed:
        p["completed"] = completed
    return p


@dataclasses.dataclass
class FakeModel:
    name: str = "llama3.2:latest"
    layers: list = dataclasses.field(default_factory=lambda: [2_000_000, 1_000, 500])
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization: str = "Q4_K_M"
    capabilities: list = dataclasses.field(default_factory=lambda: ["completion"])
    thinking: bool = False
    context_length: int = 131072
    license: str = ""
    reply: Optional[Callable[[list], str]] = None
    template: str = "{{ .Prompt }}"
    parameters: str = 'stop                           "<|eot_id|>"'
    blobs_of: str = ""
    "Another tag whose blobs this one shares (llama3.2:3b is llama3.2:latest): same digests."
    remote_host: str = ""
    "A cloud model's stub (what pulling gpt-oss:20b-cloud writes): where it runs."
    remote_model: str = ""
    embedding_length: int = 3072
    model_info: dict = dataclasses.field(default_factory=dict)
    """/api/show model_info entries added or replaced (all of them when it names
    general.architecture); a list is an array, null unless verbose."""

    def __post_init__(self):
        # thinking flag and "thinking" capability describe the same thing: keep them in sync
        self.capabilities = list(self.capabilities)
        if self.thinking and "thinking" not in self.capabilities:
            self.capabilities.append("thinking")
        self.thinking = "thinking" in self.capabilities
        self.parsed = parse_name(self.name)
        if not self.parsed.valid_for(PART_MAX_NEWER):  # the server checks its own limit
            raise ValueError(f"invalid model name {self.name!r}")

    @property
    def size(self) -> int:
        return sum(self.layers)

    @property
    def digests(self) -> list:  # first layer is the weights
        seed = parse_name(self.blobs_of).short if self.blobs_of else self.parsed.short
        return [f"sha256:{_sha(f'{seed}{i}')}" for i in range(len(self.layers))]

    @property
    def manifest_digest(self) -> str:  # /api/tags and /api/ps use the bare hex
        return _sha(self.parsed.short + "#manifest")

    def details(self, listing: bool = False) -> dict:
        d = {"parent_model": "", "format": "gguf", "family": self.family, "families": [self.family],
             "parameter_size": self.parameter_size, "quantization_level": self.quantization}
        if listing:  # /api/tags only; api.ModelDetails context_length/embedding_length,omitempty
            if self.context_length:
                d["context_length"] = self.context_length
            if self.embedding_length:
                d["embedding_length"] = self.embedding_length
        return d

    def info(self) -> dict:
        """The GGUF header as /api/show's model_info shows it (arrays included)."""
        if "general.architecture" in self.model_info:
            return dict(self.model_info)
        a = self.family
        info = {"general.architecture": a, "general.basename": self.parsed.model,
                "general.file_type": 15, "general.parameter_count": 3212749888,
                "general.quantization_version": 2, f"{a}.attention.head_count": 24,
                f"{a}.attention.head_count_kv": 8, f"{a}.attention.layer_norm_rms_epsilon": 1e-05,
                f"{a}.block_count": 28, f"{a}.context_length": self.context_length,
                f"{a}.embedding_length": self.embedding_length, f"{a}.feed_forward_length": 8192,
                f"{a}.rope.dimension_count": 128, f"{a}.rope.freq_base": 500000,
                f"{a}.vocab_size": 128256, "tokenizer.ggml.bos_token_id": 128000,
                "tokenizer.ggml.eos_token_id": 128009, "tokenizer.ggml.merges": ["Ġ Ġ", "Ġ t"],
                "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe",
                "tokenizer.ggml.token_type": [1, 1, 3], "tokenizer.ggml.tokens": ["!", "#", "<s>"]}
        info.update(self.model_info)
        return info

    def tensors(self) -> list:
        """api.Tensor per weight: output, norms and the embedding, then nine per block."""
        n = int(self.info().get(f"{self.family}.block_count") or 0)
        per = ("attn_k", "attn_norm", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate",
               "ffn_norm", "ffn_up")
        emb = self.embedding_length
        out = [{"name": "output.weight", "type": "Q6_K", "shape": [emb, 128256]},
               {"name": "output_norm.weight", "type": "F32", "shape": [emb]},
               {"name": "token_embd.weight", "type": "Q4_K", "shape": [emb, 128256]}]
        for b in range(n):
            out += [{"name": f"blk.{b}.{t}.weight", "type": "F32" if t.endswith("norm") else "Q4_K",
                     "shape": [emb] if t.endswith("norm") else [emb, emb]} for t in per]
        return out

    def answer(self, messages: list) -> tuple:
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        text = self.reply(messages) if self.reply else f"You said: {last}"
        return f"Thinking about: {last}", text


def _tokens(text: str) -> list:
    return re.findall(r"\s*\S+|\s+$", text) or ([text] if text else [])


def _keep_alive_seconds(v) -> Optional[float]:
    """api.Duration: a number is seconds, a string is a Go duration; negative means forever."""
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        pass
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(-?[\d.]+)(ms|us|ns|h|m|s)", s)
    return sum(float(n) * units[u] for n, u in parts) if parts else None


class Faults:
    """Failure switches (the module docstring says what each does). All off by default;
    `refuse` acts immediately on the server."""

    def __init__(self, server: "FakeOllama"):
        self._server = server
        self._refuse = False
        self.reset()

    def reset(self):
        self.refuse = False
        # between the client and Ollama
        self.drop_pull_after = None
        self.drop_chat_after = None
        self.stall_pull_after = None
        self.stall_repeat = False
        self.chat_first_token_delay = 0.0
        # the registry, as download.go reports it
        self.registry_down = False
        self.registry_drop_at = None
        self.registry_stall_at = None
        self.registry_gone_at = None
        self.regress = False
        self.blob_without_location = False
        self.digest_mismatch = False
        self.pull_error = None  # an {"error"} line after the first tick, e.g. disk_full()
        self.pull_error_line = None  # a dict sent as the last pull line (after the manifest)
        self.end_without_success = False
        self.safetensors = False
        # the runner and the scheduler
        self.remove_before_chat = False
        self.busy = 0  # answer this many chats/generates with 503 busy
        self.chat_fail = None  # (status, error) before the first token: 500 runner, 499...
        self.chat_error_after = None  # (tokens, error): an {"error"} line after some tokens
        self.spurious_not_found = 0  # answer this many chats/generates with 404 not found

    @property
    def refuse(self) -> bool:
        return self._refuse

    @refuse.setter
    def refuse(self, value: bool):
        value = bool(value)
        if value != self._refuse:
            self._refuse = value
            self._server._set_listening(not value)

    def disk_full(self):
        # download.go writes to "<blob>-partial"; {hex} becomes the layer being written
        self.pull_error = (f"write {self._server.models_dir}/blobs/sha256-{{hex}}-partial: "
                           "no space left on device")

    def runner_dies(self, after_tokens: int):
        """llama-server killed mid-answer: its stream ends with this line (status 200)."""
        self.chat_error_after = (after_tokens, RUNNER_EOF)


# --------------------------------------------------------------------------- the server
class FakeOllama:
    def __init__(self, bind: str = "127.0.0.1"):
        self.bind = bind             # "::1": an IPv6 loopback server (OLLAMA_HOST=[::1]:port)
        self._lock = threading.RLock()
        self._installed: dict = {}   # key -> (FakeModel, modified_at)
        self._remote: dict = {}      # key -> FakeModel
        self._blobs: dict = {}       # digest -> bytes on disk (partials shared across tags)
        self._cloud: dict = {}       # key of the base name -> FakeModel on "ollama.com"
        self.version = VERSION
        self.name_part_max = PART_MAX  # PART_MAX_NEWER (128): releases 0.34-0.40
        self.signed_in = True        # this Ollama is connected to ollama.com
        self.signin_url = SIGNIN_URL
        self.cloud_disabled = False  # OLLAMA_NO_CLOUD=1
        self.cloud_source = None     # /api/status source; None: "env" when disabled, else "none"
        self.has_status = True       # False: a server older than v0.16.2 (no /api/status)
        self.on_gpu = True           # False: /api/ps size_vram 0
        self.router = False          # True: an Olla-like router in front (501 for management)
        self.models_dir = "/root/.ollama/models"
        self.ticker = False          # False: chunk_size per event_delay; True: tick_bytes per tick
        self.tick = 0.06             # the ticker's interval (60 ms, as Ollama; tests shrink it)
        self.tick_bytes = 64_000     # bytes a ticker interval downloads
        self.tick_repeats = 1        # times each value is reported (a slow link repeats)
        self.time_scale = 1.0        # the server's own waits (30 s stall timeout, retry sleeps)
        self.plain_http_registries: set = set()  # hosts that speak HTTP, not HTTPS
        self.blob_url: Callable[[Name, str], str] = signed_blob_url
        self._loaded: dict = {}      # key -> (FakeModel, expires_at, context_length)
        self._conns: set = set()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._port = 0
        self._stopping = threading.Event()
        self._release = threading.Condition(self._lock)
        self._release_gen = 0
        self._open_streams = 0
        self.chunk_size = 64_000
        self.event_delay = 0.0
        self.token_delay = 0.0
        self.pull_requests: collections.Counter = collections.Counter()
        self.chat_requests: list = []
        self.requests: list = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.faults = Faults(self)

    # ---- model registry
    def add_installed(self, m: FakeModel):
        with self._lock:
            self._installed[m.parsed.key] = (m, time.time())
            for d, size in zip(m.digests, m.layers):
                self._blobs[d] = size
            # it came from the registry, so it can be pulled again after a delete
            self._remote.setdefault(m.parsed.key, m)

    def add_cloud(self, m: FakeModel):
        """A model on ollama.com: chats with `<name>:cloud` / `<tag>-cloud` are proxied to it."""
        with self._lock:
            self._cloud[m.parsed.key] = m

    def add_remote(self, m: FakeModel):
        with self._lock:
            self._remote[m.parsed.key] = m

    def set_on_disk(self, name: str, *layer_bytes: int):
        """Bytes of each of ``name``'s blobs already on disk (a partial, or blobs another
        model shares); the next pull reports those layers complete or resumes them."""
        n = parse_name(name)
        with self._lock:
            m = self._remote.get(n.key) or self._lookup_installed(n)
            if m is None:
                raise KeyError(f"{name}: add_remote() or add_installed() it first")
            for d, size, have in zip(m.digests, m.layers, layer_bytes):
                self._blobs[d] = max(0, min(int(have), size))

    def load(self, name: str, keep_alive=None):
        """``name`` (installed) is in memory, as a chat leaves it."""
        self._load(self._lookup_installed(parse_name(name)), keep_alive)

    def scale_time(self, scale: float, tick_bytes: Optional[int] = None):
        """The real cadence, ``scale`` times the real durations: a tick every 60 ms x scale,
        the 30 s stall timeout and the retry sleeps x scale. Counts of ticks stay the real ones."""
        self.ticker, self.tick, self.time_scale = True, 0.06 * scale, scale
        if tick_bytes is not None:
            self.tick_bytes = tick_bytes

    def installed_names(self) -> list:
        with self._lock:
            return [m.parsed.short for m, _ in self._installed.values()]

    def partial_bytes(self, name: str) -> int:
        """Bytes of unfinished blobs of ``name`` on disk (what a pull resumes from)."""
        n = parse_name(name)
        with self._lock:
            m = self._remote.get(n.key) or self._lookup_installed(n)
            if m is None:
                return 0
            have = [min(self._blobs.get(d, 0), size) for d, size in zip(m.digests, m.layers)]
        return 0 if all(h >= size for h, size in zip(have, m.layers)) else sum(have)

    def release(self):
        with self._release:
            self._release_gen += 1
            self._release.notify_all()

    @property
    def open_streams(self) -> int:
        with self._lock:
            return self._open_streams

    # ---- lifecycle
    @property
    def url(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self._port}"

    def start(self) -> "FakeOllama":
        self._stopping.clear()
        self._set_listening(True)
        return self

    def stop(self):
        self._stopping.set()
        self._set_listening(False)
        self.release()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _set_listening(self, on: bool):
        if on and self._httpd is None and not self._stopping.is_set():
            server = _HTTPServer6 if ":" in self.bind else _HTTPServer
            httpd = server((self.bind, self._port), _Handler)
            httpd.fake = self
            self._port = httpd.server_address[1]  # same port again after a refuse window
            self._httpd = httpd
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                            name="fake-ollama", daemon=True)
            self._thread.start()
        elif not on and self._httpd is not None:
            httpd, self._httpd = self._httpd, None
            httpd.shutdown()
            httpd.server_close()
            # a dead server also takes its keep-alive and streaming connections with it
            with self._lock:
                conns = list(self._conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _client_gone(self):
        with self._lock:
            self.disconnects += 1
        self.disconnected.set()

    def _lookup_installed(self, n: Name):
        with self._lock:
            entry = self._installed.get(n.key)
            return entry[0] if entry else None

    def _load(self, m: FakeModel, keep_alive, num_ctx=None):
        secs = _keep_alive_seconds(keep_alive)
        secs = 300.0 if secs is None else secs
        with self._lock:
            if secs == 0:
                self._loaded.pop(m.parsed.key, None)
                return
            expires = time.time() + (secs if secs > 0 else 100 * 365 * 86400)
            ctx = min(int(num_ctx or 4096), m.context_length)
            self._loaded[m.parsed.key] = (m, expires, ctx)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many simultaneous streams connect at once

    def handle_error(self, request, client_address):  # sockets we killed on purpose are not errors
        pass


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _ClientGone(Exception):
    pass


# --------------------------------------------------------------------------- HTTP handler
class _Handler(BaseHTTPRequestHandler):
    # Go's net/http sets TCP_NODELAY; without it, headers and body written apart wait ~40 ms
    # for a delayed ACK on a reused connection.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams

    # ---- connection bookkeeping
    def setup(self):
        super().setup()
        self.fake: FakeOllama = self.server.fake
        with self.fake._lock:
            self.fake._conns.add(self.connection)

    def finish(self):
        with self.fake._lock:
            self.fake._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except (OSError, _ClientGone):
            self.close_connection = True

    def log_message(self, *args):
        pass

    def send_response(self, code, message=None):  # Go sends Date but no Server header
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    # ---- plain responses
    def _send(self, status: int, body: bytes, ctype: Optional[str], extra: Optional[dict] = None):
        self.send_response(status)
        if ctype:  # gin writes none for a handler that wrote no body (delete, copy)
            self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, obj, ctype="application/json; charset=utf-8"):
        self._send(status, _dumps(obj), ctype)

    def _error(self, status: int, msg: str):
        self._json(status, {"error": msg})

    def _model_ref(self, req: str):
        """parseAndValidateModelRef: (Name, base, source), or None once the 400 is sent."""
        try:
            base, source = parse_ref(req)
        except Conflict as e:
            return self._error(400, str(e))
        n = parse_name(base)
        if not n.valid_for(self.fake.name_part_max):
            return self._error(400, INVALID_NAME)
        return n, base, source

    # ---- dispatch
    ROUTES = {
        ("GET", "/"): "h_root", ("HEAD", "/"): "h_root",
        ("GET", "/api/version"): "h_version", ("HEAD", "/api/version"): "h_version",
        ("GET", "/api/tags"): "h_tags", ("HEAD", "/api/tags"): "h_tags",
        ("POST", "/api/pull"): "h_pull", ("POST", "/api/show"): "h_show",
        ("DELETE", "/api/delete"): "h_delete", ("GET", "/api/ps"): "h_ps",
        ("POST", "/api/chat"): "h_chat", ("POST", "/api/generate"): "h_generate",
        ("GET", "/api/status"): "h_status", ("POST", "/api/copy"): "h_copy",
        ("POST", "/api/embed"): "h_embed",
    }
    # an Olla-like router answers these itself (http.Error: text/plain, nosniff)
    ROUTER_501 = {("POST", "/api/pull"): ROUTER_501, ("POST", "/api/push"): ROUTER_501,
                  ("POST", "/api/create"): ROUTER_501, ("POST", "/api/copy"): ROUTER_501,
                  ("DELETE", "/api/delete"): ROUTER_501, ("POST", "/api/show"): ROUTER_SHOW_501}

    def _dispatch(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body, bad = None, None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as e:
                bad = f"invalid character in request body: {e}"
        with self.fake._lock:
            self.fake.requests.append((self.command, path, body))
        if self.fake.router and (self.command, path) in self.ROUTER_501:
            return self._send(501, self.ROUTER_501[(self.command, path)].encode(),
                              "text/plain; charset=utf-8", {"X-Content-Type-Options": "nosniff"})
        handler = self.ROUTES.get((self.command, path))
        if handler is None:  # gin: HandleMethodNotAllowed = true
            if any(p == path for _, p in self.ROUTES):
                return self._send(405, b"405 method not allowed", "text/plain")
            return self._send(404, b"404 page not found", "text/plain")
        if self.command in ("POST", "DELETE"):
            if bad:
                return self._error(400, bad)
            if body is None:
                return self._error(400, "missing request body")
        getattr(self, handler)(body or {})

    do_GET = do_HEAD = do_POST = do_DELETE = _dispatch

    # ---- streaming primitives
    def _alive(self) -> bool:
        """True unless the client closed its end (zero-byte peek) or the server is stopping."""
        if self.fake._stopping.is_set():
            return False
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r and self.connection.recv(1, socket.MSG_PEEK) == b"":
                return False
        except (OSError, ValueError):
            return False
        return True

    def _wait(self, seconds: float):
        """Sleep, but notice a client hang-up within ~50 ms (raises _ClientGone)."""
        end = time.monotonic() + seconds
        while True:
            if not self._alive():
                self._gone()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.05, left))

    def _gone(self):
        if not self.fake._stopping.is_set():
            self.fake._client_gone()
        raise _ClientGone()

    def _abort(self):
        """Drop the socket mid-response, like a crashed server or a cut network."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True
        raise _ClientGone()


def _dumps(obj) -> bytes:
    # Go's encoding/json: compact, UTF-8, HTML-escaped <, >, &
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


class _Out:
    """One response that is either an NDJSON chunked stream or (stream:false) one JSON at the end.

    ``json_ctype`` is the non-streamed answer's Content-Type: gin's c.JSON adds the charset,
    waitForStream (pull) sets a bare application/json first."""

    def __init__(self, h: _Handler, stream: bool, delay: float,
                 json_ctype: str = "application/json; charset=utf-8"):
        self.h, self.stream, self.delay, self.json_ctype = h, stream, delay, json_ctype
        self.started = False
        self.latest = None
        self.sent = 0

    def emit(self, obj: dict, delay: Optional[float] = None):
        if self.sent:
            self.h._wait(self.delay if delay is None else delay)
        self.sent += 1
        self.latest = obj
        if not self.stream:
            if not self.h._alive():
                self.h._gone()
            return
        if not self.started:
            h = self.h
            h.send_response(200)
            h.send_header("Content-Type", "application/x-ndjson")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            self.started = True
            with h.fake._lock:
                h.fake._open_streams += 1
        self._chunk(_dumps(obj) + b"\n")

    def _chunk(self, data: bytes):
        try:
            self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.h._gone()

    def error(self, msg: str, status: int = 500):
        # streamResponse: an error after the first line is an {"error"} line; before it, a
        # status with the bare application/json it set first
        if self.stream and self.started:
            self._chunk(_dumps({"error": msg}) + b"\n")
            self.finish()
        else:
            self.h._json(status, {"error": msg},
                         "application/json" if self.stream else self.json_ctype)

    def finish(self, final: Optional[dict] = None):
        if self.stream:
            self._chunk(b"")  # zero-length chunk terminates the body
        else:
            self.h._json(200, final if final is not None else self.latest, self.json_ctype)

    def close(self):
        if self.started:
            with self.h.fake._lock:
                self.h.fake._open_streams -= 1
            self.started = False


def _route(fn):
    setattr(_Handler, fn.__name__, fn)
    return fn


# --------------------------------------------------------------------------- simple routes
@_route
def h_root(self, body):
    self._send(200, b"Ollama is running", "text/plain; charset=utf-8")


@_route
def h_version(self, body):
    self._json(200, {"version": self.fake.version})


@_route
def h_status(self, body):  # StatusHandler (v0.16.2+)
    if not self.fake.has_status:  # an older server: gin's plain 404
        return self._send(404, b"404 page not found", "text/plain")
    disabled = self.fake.cloud_disabled
    source = self.fake.cloud_source or ("env" if disabled else "none")
    self._json(200, {"cloud": {"disabled": disabled, "source": source}})


def _tag_entry(m: FakeModel, t: float) -> dict:
    e = {"name": m.parsed.short, "model": m.parsed.short}
    if m.remote_host:  # remote_model / remote_host,omitempty
        e.update(remote_model=m.remote_model, remote_host=m.remote_host)
    e.update(modified_at=_go_time(t), size=m.size, digest=m.manifest_digest,
             details=m.details(listing=True))
    if m.capabilities:
        e["capabilities"] = list(m.capabilities)
    return e


@_route
def h_tags(self, body):
    with self.fake._lock:
        entries = sorted(self.fake._installed.values(), key=lambda e: -e[1])
    self._json(200, {"models": [_tag_entry(m, t) for m, t in entries]})


@_route
def h_ps(self, body):
    now = time.time()
    with self.fake._lock:
        for k in [k for k, v in self.fake._loaded.items() if v[1] <= now]:
            del self.fake._loaded[k]
        entries = sorted(self.fake._loaded.values(), key=lambda e: -e[1])
    gpu = self.fake.on_gpu
    self._json(200, {"models": [
        {"name": m.parsed.short, "model": m.parsed.short, "size": int(m.size * 1.2),
         "digest": m.manifest_digest, "details": m.details(), "expires_at": _go_time(exp),
         "size_vram": int(m.size * 1.2) if gpu else 0, "context_length": ctx}
        for m, exp, ctx in entries]})


@_route
def h_show(self, body):
    req = body.get("model") or body.get("name") or ""
    if not req:
        return self._error(400, "model is required")
    ref = self._model_ref(req)
    if ref is None:
        return None
    n, base, source = ref
    if source == "cloud":  # proxied: ollama.com's /api/show of the base name
        if self.fake.cloud_disabled:
            return self._error(403, "ollama cloud is disabled: remote model details are "
                                    "unavailable")
        if not self.fake.signed_in:
            return self._json(401, {"error": "unauthorized", "signin_url": self.fake.signin_url})
    with self.fake._lock:
        entry = self.fake._installed.get(n.key)
        cloud = self.fake._cloud.get(n.key) if source == "cloud" else None
    if cloud is not None:
        entry = (cloud, time.time())
    if entry is None:  # ShowHandler: the name as the request gave it, source suffix cut
        return self._error(404, f"model '{base}' not found")
    self._json(200, _show(self.fake, *entry, verbose=bool(body.get("verbose"))))


def _show(fake: "FakeOllama", m: FakeModel, t: float, verbose: bool) -> dict:
    """GetModelInfo: arrays in model_info are null unless verbose; a cloud stub has no
    tensors and only the few model_info keys its config carries."""
    params = [line.split(None, 1) for line in m.parameters.splitlines() if line.strip()]
    modelfile = (f'# Modelfile generated by "ollama show"\n# To build a new Modelfile based on '
                 f'this, replace FROM with:\n# FROM {m.parsed.short}\n\n'
                 f'FROM {fake.models_dir}/blobs/sha256-{m.digests[0][7:]}\n'
                 f'TEMPLATE {json.dumps(m.template)}\n'
                 + "".join(f"PARAMETER {k} {v.strip().strip(chr(34))}\n" for k, v in params)
                 + (f"LICENSE {json.dumps(m.license)}\n" if m.license else ""))
    resp = {"license": m.license, "modelfile": modelfile, "parameters": m.parameters,
            "template": m.template, "details": m.details()}
    if not resp["license"]:
        del resp["license"]  # omitempty
    if m.remote_host:
        a = m.family
        resp.update(remote_model=m.remote_model, remote_host=m.remote_host, model_info={
            "general.architecture": a, f"{a}.context_length": m.context_length,
            f"{a}.embedding_length": m.embedding_length})
    else:
        resp["model_info"] = {k: (v if verbose or not isinstance(v, list) else None)
                              for k, v in m.info().items()}
        resp["tensors"] = m.tensors()
    resp.update(capabilities=list(m.capabilities), modified_at=_go_time(t))
    return resp


@_route
def h_delete(self, body):
    req = body.get("model") or body.get("name") or ""
    n = parse_name(req)
    if not n.valid_for(self.fake.name_part_max):
        return self._error(400, f"name {json.dumps(req)} is invalid")
    with self.fake._lock:
        gone = self.fake._installed.pop(n.key, None)
        if gone is None:
            return self._error(404, f"model '{req}' not found")
        # DeleteHandler: m.Remove(), then m.RemoveLayers(): the blobs no other model uses
        # are deleted (OLLAMA_NOPRUNE does not apply here), so pulling it again starts over
        used = {d for m, _ in self.fake._installed.values() for d in m.digests}
        for d in set(gone[0].digests) - used:
            self.fake._blobs.pop(d, None)
    self._send(200, b"", None)  # gin writes no body and so no Content-Type


@_route
def h_copy(self, body):  # CopyHandler
    src, dst = body.get("source") or "", body.get("destination") or ""
    s, d = parse_name(src), parse_name(dst)
    if not s.valid_for(self.fake.name_part_max):
        return self._error(400, f"source {json.dumps(src)} is invalid")
    if not d.valid_for(self.fake.name_part_max):
        return self._error(400, f"destination {json.dumps(dst)} is invalid")
    m = self.fake._lookup_installed(s)
    if m is None:
        return self._error(404, f"model {json.dumps(src)} not found")
    self.fake.add_installed(dataclasses.replace(m, name=d.short, blobs_of=m.blobs_of or m.parsed.short))
    self._send(200, b"", None)


# --------------------------------------------------------------------------- recommendations
# GET /api/experimental/model-recommendations (server/routes.go, v0.22.1+). The fake's version
# predates it, so by default it is a 404 like any unknown route; set
# `fake.recommendations = [...]` (dicts as the server sends them) to serve it.
_Handler.ROUTES[("GET", "/api/experimental/model-recommendations")] = "h_recommendations"


@_route
def h_recommendations(self, body):
    recs = getattr(self.fake, "recommendations", None)
    if recs is None:
        return self._send(404, b"404 page not found", "text/plain")
    self._json(200, {"recommendations": list(recs)})


# The bigger routes live next door; importing them registers them on _Handler.
from tests import fake_ollama_chat, fake_ollama_pull  # noqa: E402,F401

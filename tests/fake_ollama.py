"""A fake Ollama server speaking the real wire protocol, for tests.

Everything here mirrors ollama/ollama's Go server (server/routes.go, server/images.go,
server/download.go, types/model/name.go, api/types.go): status codes, error texts,
NDJSON streaming with `Transfer-Encoding: chunked`, omitempty fields. It is a real
HTTP/1.1 server on 127.0.0.1 so clients exercise their real transport (keep-alive,
refused connections, sockets dropped mid-stream). Standard library only.
"""
from __future__ import annotations

import base64
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
        return all(_valid_part(k, v) for k, v in
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


_PART_RE = {
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"),
    "ns": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
}


def _valid_part(kind: str, v: str) -> bool:
    return bool(v) and _PART_RE[kind].fullmatch(v) is not None


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

    def __post_init__(self):
        # thinking flag and "thinking" capability describe the same thing: keep them in sync
        self.capabilities = list(self.capabilities)
        if self.thinking and "thinking" not in self.capabilities:
            self.capabilities.append("thinking")
        self.thinking = "thinking" in self.capabilities
        self.parsed = parse_name(self.name)
        if not self.parsed.valid:
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
        if listing and self.context_length:  # api.ModelDetails context_length,omitempty
            d["context_length"] = self.context_length
        return d

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
    """Failure switches. All off by default; `refuse` acts immediately on the server."""

    def __init__(self, server: "FakeOllama"):
        self._server = server
        self._refuse = False
        self.reset()

    def reset(self):
        self.refuse = False
        self.drop_pull_after = None
        self.drop_chat_after = None
        self.stall_pull_after = None
        self.stall_repeat = False
        self.pull_error = None
        self.end_without_success = False
        self.regress = False
        self.chat_first_token_delay = 0.0
        self.remove_before_chat = False
        self.spurious_404 = 0  # answer this many chats 404 "not found" though installed
        # (servers before 0.34.4 did on large libraries)
        self.safetensors = False
        self.busy = 0  # answer this many chats/generates with 503 busy
        self.chat_fail = None  # (status, error) before the first token: 500 runner, 499...
        self.chat_error_after = None  # (tokens, error): an {"error"} line after some tokens
        self.pull_error_line = None  # a dict sent as the last pull line (after the manifest)

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
        self.pull_error = ("write /root/.ollama/models/blobs/sha256-{hex}-partial: "
                           "no space left on device")


# --------------------------------------------------------------------------- the server
class FakeOllama:
    def __init__(self, bind: str = "127.0.0.1"):
        self.bind = bind             # "::1": an IPv6 loopback server (OLLAMA_HOST=[::1]:port)
        self._lock = threading.RLock()
        self._installed: dict = {}   # key -> (FakeModel, modified_at)
        self._remote: dict = {}      # key -> FakeModel
        self._blobs: dict = {}       # digest -> bytes on disk (partials shared across tags)
        self._cloud: dict = {}       # key of the base name -> FakeModel on "ollama.com"
        self.signed_in = True        # this Ollama is connected to ollama.com
        self.signin_url = SIGNIN_URL
        self.cloud_disabled = False  # OLLAMA_NO_CLOUD=1
        self.has_status = True       # False: a server older than v0.16.2 (no /api/status)
        self.ticker = False          # False: a line per chunk; True: download.go's ticker
        self.tick = 0.06             # the ticker's interval (60 ms, as Ollama; tests shrink it)
        self.tick_bytes = 64_000     # bytes a ticker interval downloads
        self.tick_repeats = 1        # times each value is reported (a slow link repeats)
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
    def _send(self, status: int, body: bytes, ctype: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, obj, ctype="application/json; charset=utf-8"):
        self._send(status, _dumps(obj), ctype)

    def _error(self, status: int, msg: str):
        self._json(status, {"error": msg})

    # ---- dispatch
    ROUTES = {
        ("GET", "/"): "h_root", ("HEAD", "/"): "h_root",
        ("GET", "/api/version"): "h_version", ("HEAD", "/api/version"): "h_version",
        ("GET", "/api/tags"): "h_tags", ("HEAD", "/api/tags"): "h_tags",
        ("POST", "/api/pull"): "h_pull", ("POST", "/api/show"): "h_show",
        ("DELETE", "/api/delete"): "h_delete", ("GET", "/api/ps"): "h_ps",
        ("POST", "/api/chat"): "h_chat", ("POST", "/api/generate"): "h_generate",
        ("GET", "/api/status"): "h_status",
    }

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
    """One response that is either an NDJSON chunked stream or (stream:false) one JSON at the end."""

    def __init__(self, h: _Handler, stream: bool, delay: float):
        self.h, self.stream, self.delay = h, stream, delay
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
        # streamResponse: an error after the first line is an {"error"} line; before it, a status
        if self.stream and self.started:
            self._chunk(_dumps({"error": msg}) + b"\n")
            self.finish()
        else:
            self.h._error(status, msg)

    def finish(self, final: Optional[dict] = None):
        if self.stream:
            self._chunk(b"")  # zero-length chunk terminates the body
        else:
            self.h._json(200, final if final is not None else self.latest)

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
    self._json(200, {"version": VERSION})


@_route
def h_status(self, body):  # StatusHandler (v0.16.2+)
    if not self.fake.has_status:  # an older server: gin's plain 404
        return self._send(404, b"404 page not found", "text/plain")
    disabled = self.fake.cloud_disabled
    self._json(200, {"cloud": {"disabled": disabled, "source": "env" if disabled else "none"}})


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
    self._json(200, {"models": [
        {"name": m.parsed.short, "model": m.parsed.short, "size": int(m.size * 1.2),
         "digest": m.manifest_digest, "details": m.details(), "expires_at": _go_time(exp),
         "size_vram": int(m.size * 1.2), "context_length": ctx} for m, exp, ctx in entries]})


@_route
def h_show(self, body):
    req = body.get("model") or body.get("name") or ""
    if not req:
        return self._error(400, "model is required")
    try:
        base, source = parse_ref(req)
    except Conflict as e:
        return self._error(400, str(e))
    n = parse_name(base)
    if not n.valid:
        return self._error(400, INVALID_NAME)
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
    if entry is None:  # ShowHandler names it as DisplayShortest
        return self._error(404, f"model '{n.short}' not found")
    m, t = entry
    arch = m.family
    info = {"general.architecture": arch, "general.basename": m.parsed.model, "general.file_type": 15,
            "general.parameter_count": 3212749888, "general.quantization_version": 2,
            f"{arch}.context_length": m.context_length, f"{arch}.embedding_length": 3072,
            f"{arch}.block_count": 28, "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": []}
    modelfile = (f'# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, '
                 f'replace FROM with:\n# FROM {m.parsed.short}\n\nFROM {m.digests[0]}\n')
    resp = {"license": m.license, "modelfile": modelfile, "parameters": m.parameters,
            "template": m.template, "details": m.details(), "model_info": info,
            "capabilities": list(m.capabilities), "modified_at": _go_time(t)}
    if not resp["license"]:
        del resp["license"]  # omitempty
    self._json(200, resp)


@_route
def h_delete(self, body):
    req = body.get("model") or body.get("name") or ""
    n = parse_name(req)
    if not n.valid:
        return self._error(400, f"name {json.dumps(req)} is invalid")
    with self.fake._lock:
        if self.fake._installed.pop(n.key, None) is None:
            return self._error(404, f"model '{req}' not found")
    self._send(200, b"", "text/plain; charset=utf-8")  # gin writes no body


# --------------------------------------------------------------------------- /api/pull
@_route
def h_pull(self, body):
    fake, faults = self.fake, self.fake.faults
    req = body.get("model") or body.get("name") or ""
    try:  # PullHandler: parseNormalizePullModelRef, then model.ParseName
        n = parse_name(pull_name(req))
    except Conflict as e:
        return self._error(400, str(e))
    if not n.valid:
        return self._error(400, INVALID_NAME)
    cloud = _is_cloud_tag(n.tag)
    with fake._lock:
        fake.pull_requests[n.short] += 1
        installed = fake._installed.get(n.key)  # keys are case-folded: EqualFold lookups
        m = fake._remote.get(n.key) or (installed[0] if installed else None)
        if cloud and m is None:
            m = _cloud_stub(fake, n)
        previous = installed[0] if installed else None
    out = _Out(self, body.get("stream") is not False, fake.event_delay)
    # waitForStream (stream:false) answers application/json with the last progress
    try:
        out.emit({"status": "pulling manifest"})
        if m is None:  # registry 404 -> os.ErrNotExist wrapped by pullModelManifest
            return out.error("pull model manifest: file does not exist")
        if faults.pull_error_line is not None:  # e.g. the newer client's {"code": "not_found"}
            out.emit(dict(faults.pull_error_line))
            return out.finish()
        _pull_layers(self, out, m)
        out.emit({"status": "writing manifest"})
        fake.add_installed(m)
        if previous is not None and set(previous.digests) - set(m.digests):
            out.emit({"status": "removing unused layers"})  # only when blobs were replaced
        if faults.end_without_success:
            return out.finish()
        out.emit({"status": "success"})
        out.finish()
    finally:
        out.close()


def _is_cloud_tag(tag: str) -> bool:
    t = tag.lower()
    return t == "cloud" or t.endswith("-cloud")


def _cloud_stub(fake: "FakeOllama", n: Name):
    """Pulling a cloud name writes a small stub manifest pointing at ollama.com."""
    base = parse_name(parse_ref(n.short)[0])
    target = fake._cloud.get(base.key)
    if target is None:
        return None
    return FakeModel(name=n.short, layers=[380], family=target.family,
                     parameter_size=target.parameter_size, quantization="",
                     capabilities=list(target.capabilities), context_length=target.context_length,
                     remote_host="https://ollama.com:443", remote_model=base.short)


def _progress(status, digest, total, completed):
    p = {"status": status, "digest": digest, "total": total}
    if completed:  # api.ProgressResponse: `completed,omitempty`
        p["completed"] = completed
    return p


def _pull_layers(h: _Handler, out: _Out, m: FakeModel):
    fake, faults = h.fake, h.fake.faults
    if faults.safetensors:
        # images.go pullWithTransfer: one aggregate line per update, no per-layer digests,
        # no separate "verifying sha256 digest" step (blobs are verified while downloading)
        segments = [("pulling model", "sha256:model", 0, m.size, list(zip(m.digests, m.layers)))]
    else:  # download.go: layers one after another, status "pulling <digest[7:19]>"
        segments, off = [], 0
        for d, size in zip(m.digests, m.layers):
            segments.append((f"pulling {d[7:19]}", d, off, size, [(d, size)]))
            off += size
    state = {"chunks": 0, "stalled": False, "regressed": False}

    def check(pos: int, status: str, digest: str, line: dict):
        if faults.drop_pull_after is not None and pos >= faults.drop_pull_after:
            h._abort()
        if faults.stall_pull_after is not None and pos >= faults.stall_pull_after and not state["stalled"]:
            state["stalled"] = True
            _stall(h, out, line)
        if faults.pull_error and state["chunks"] == 1:
            hexd = (m.digests[0] if digest == "sha256:model" else digest)[7:]
            out.error(faults.pull_error.replace("{hex}", hexd))
            raise _ClientGone()  # ends this request cleanly; not counted as a disconnect

    def on_disk(blobs) -> int:
        with fake._lock:
            return sum(min(fake._blobs.get(d, 0), size) for d, size in blobs)

    def store(blobs, done: int):  # bytes of the segment -> bytes of each blob, in order
        with fake._lock:
            for d, size in blobs:
                fake._blobs[d] = max(0, min(done, size))
                done -= size

    for status, digest, off, size, blobs in segments:
        done = on_disk(blobs)
        if done >= size:  # downloadBlob cache hit: one report, complete
            out.emit(_progress(status, digest, size, size))
            continue
        if fake.ticker:
            _tick_layer(h, out, status, digest, size, done, lambda d: store(blobs, d))
            continue
        line = _progress(status, digest, size, done)
        out.emit(line)
        check(off + done, status, digest, line)
        while done < size:
            target = min(done + max(1, int(fake.chunk_size)), size)
            for limit in (faults.drop_pull_after, faults.stall_pull_after):
                if limit is not None and off + done < limit < off + target:
                    target = limit - off  # land exactly on the fault boundary
            step, done, retried = target - done, target, False
            if faults.regress and not state["regressed"] and state["chunks"] >= 2:
                # a failed part is retried: download.go subtracts its bytes from Completed,
                # so one update goes backwards (below the previous value), then it climbs again
                state["regressed"] = retried = True
                done = max(0, done - step - max(1, step // 2))
            store(blobs, done if retried else max(done, on_disk(blobs)))
            state["chunks"] += 1
            line = _progress(status, digest, size, done)
            out.emit(line)
            check(off + done, status, digest, line)
    if not faults.safetensors:
        out.emit({"status": "verifying sha256 digest"})


def _tick_layer(h: _Handler, out: _Out, status: str, digest: str, size: int, done: int, store):
    """download.go Wait(): a ticker reports the current Completed every `tick` seconds,
    repeating it when nothing new arrived, and never once more when the blob is done: the
    last report stays below the size, and a blob finished within one tick reports nothing."""
    fake = h.fake
    while True:
        done = min(size, done + fake.tick_bytes)
        store(done)
        h._wait(fake.tick)
        if done >= size:
            return
        for _ in range(max(1, fake.tick_repeats)):
            out.emit(_progress(status, digest, size, done), delay=0)


def _stall(h: _Handler, out: _Out, line: dict):
    """Hold the stream open until release(); optionally repeat the same line like Wait()'s ticker."""
    fake = h.fake
    with fake._lock:
        gen = fake._release_gen
    while True:
        with fake._release:
            if fake._release_gen != gen or fake._stopping.is_set():
                return
            fake._release.wait(0.05)
        if fake.faults.stall_repeat and out.stream:
            out.emit(line, delay=0)
        elif not h._alive():
            h._gone()


# --------------------------------------------------------------------------- /api/chat & generate
def _resolve_for_inference(h: _Handler, req: str, body: dict):
    """Checks shared by chat and generate, in the order ChatHandler/GenerateHandler run them."""
    if not req:
        h._error(400, "model is required")
        return None
    try:  # parseAndValidateModelRef
        base, source = parse_ref(req)
    except Conflict as e:
        h._error(400, str(e))
        return None
    n = parse_name(base)
    if not n.valid:
        h._error(400, INVALID_NAME)
        return None
    if source == "cloud":
        return _cloud_target(h, n)
    m = h.fake._lookup_installed(n)
    if m is not None and m.remote_host:  # a pulled cloud stub: proxied as well
        if source == "local":
            m = None
        else:
            return _cloud_target(h, parse_name(m.remote_model))
    if m is None:
        h._error(404, f"model '{req}' not found")
        return None
    think = body.get("think")
    if think not in (None, False) and not m.thinking:
        h._error(400, f"{json.dumps(req)} does not support thinking")
        return None
    if body.get("tools") and "tools" not in m.capabilities:  # scheduleRunner CheckCapabilities
        h._error(400, f"{n.full} does not support tools")
        return None
    if not _scheduled(h):
        return None
    with h.fake._lock:
        spurious = h.fake.faults.spurious_404 > 0
        if spurious:
            h.fake.faults.spurious_404 -= 1
    if spurious:
        h._error(404, f"model '{req}' not found")
        return None
    if h.fake.faults.remove_before_chat:
        # the race: GetModel saw it, then it was deleted before the scheduler loaded it
        h.fake.faults.remove_before_chat = False
        with h.fake._lock:
            h.fake._installed.pop(n.key, None)
        h._error(404, f"model {json.dumps(req)} not found, try pulling it first")
        return None
    return m


def _cloud_target(h: _Handler, base: Name):
    """The cloud proxy (server/cloud_proxy.go): switched off, not signed in, or ollama.com's
    own answer for the base name."""
    fake = h.fake
    if fake.cloud_disabled:
        h._error(403, CLOUD_DISABLED)
        return None
    if not fake.signed_in:
        body = {"error": "unauthorized"}
        if fake.signin_url:
            body["signin_url"] = fake.signin_url
        h._json(401, body)
        return None
    with fake._lock:
        m = fake._cloud.get(base.key)
    if m is None:
        h._error(404, f"model '{base.short}' not found")
        return None
    return m if _scheduled(h) else None


def _scheduled(h: _Handler) -> bool:
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
        h._error(status, msg)
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


@_route
def h_chat(self, body):
    with self.fake._lock:
        self.fake.chat_requests.append(body)
    if _bad_think(body.get("think")):
        return self._error(400, _bad_think(body.get("think")))
    req = body.get("model") or ""
    messages = body.get("messages") or []
    m = _resolve_for_inference(self, req, body)
    if m is None:
        return
    if _option_error(body.get("options")):
        return self._error(500, _option_error(body.get("options")))
    for msg in messages:
        for img in msg.get("images") or []:
            try:
                base64.b64decode(img, validate=True)
            except (ValueError, TypeError):
                return self._error(400, "illegal base64 data at input byte 0")
    if not messages:  # empty chat loads (or with keep_alive 0, unloads) the model
        ka = _keep_alive_seconds(body.get("keep_alive"))
        self.fake._load(m, body.get("keep_alive"), (body.get("options") or {}).get("num_ctx"))
        return self._json(200, {"model": req, "created_at": _go_time(time.time()),
                                "message": {"role": "assistant", "content": ""},
                                "done_reason": "unload" if ka == 0 else "load", "done": True})
    self.fake._load(m, body.get("keep_alive"), (body.get("options") or {}).get("num_ctx"))
    thinking, text = m.answer(messages)
    use_thinking = m.thinking and body.get("think") is not False  # think defaults on
    _stream_answer(self, body, req, thinking if use_thinking else "", text, lambda t, c: {
        "role": "assistant", "content": c, **({"thinking": t} if t else {})}, chat=True)


@_route
def h_generate(self, body):
    req = body.get("model") or ""
    m = _resolve_for_inference(self, req, body)
    if m is None:
        return
    prompt = body.get("prompt") or ""
    ka = _keep_alive_seconds(body.get("keep_alive"))
    if not prompt:
        self.fake._load(m, body.get("keep_alive"), (body.get("options") or {}).get("num_ctx"))
        return self._json(200, {"model": req, "created_at": _go_time(time.time()), "response": "",
                                "done": True, "done_reason": "unload" if ka == 0 else "load"})
    self.fake._load(m, body.get("keep_alive"), (body.get("options") or {}).get("num_ctx"))
    thinking, text = m.answer([{"role": "user", "content": prompt}])
    use_thinking = m.thinking and body.get("think") is not False
    _stream_answer(self, body, req, thinking if use_thinking else "", text, None, chat=False)


def _stream_answer(h: _Handler, body: dict, req: str, thinking: str, text: str, mkmsg, chat: bool):
    fake, faults = h.fake, h.fake.faults
    start = time.monotonic_ns()
    out = _Out(h, body.get("stream") is not False, fake.token_delay)

    def piece(t: str, c: str) -> dict:
        base = {"model": req, "created_at": _go_time(time.time())}
        if chat:
            base["message"] = mkmsg(t, c)
        else:
            base["response"] = c
            if t:
                base["thinking"] = t
        base["done"] = False
        return base

    try:
        if faults.chat_first_token_delay:
            h._wait(faults.chat_first_token_delay)  # model loading: silence before first token
        load_ns = time.monotonic_ns() - start
        # options.num_predict: generation stops after that many tokens (thinking counts),
        # and the final line says done_reason "length" (llm/server.go)
        budget = (body.get("options") or {}).get("num_predict")
        budget = budget if isinstance(budget, int) and budget > 0 else None
        thought = _tokens(thinking)[:budget] if budget else _tokens(thinking)
        words = _tokens(text)
        if budget is not None:
            words = words[:max(budget - len(thought), 0)]
        cut = budget is not None and len(thought) + len(words) < (
            len(_tokens(thinking)) + len(_tokens(text)))
        thinking, text = "".join(thought), "".join(words)
        for tok in thought:
            out.emit(piece(tok, ""))
        sent = 0
        for tok in words:
            if faults.drop_chat_after is not None and sent >= faults.drop_chat_after:
                h._abort()
            if faults.chat_error_after is not None and sent >= faults.chat_error_after[0]:
                return out.error(faults.chat_error_after[1])  # the runner died mid-answer
            out.emit(piece("", tok))
            sent += 1
        final = piece("", "")
        final.pop("done")
        eval_ns = max(1, time.monotonic_ns() - start - load_ns)
        final.update({"done_reason": "length" if cut else "stop", "done": True, "total_duration": time.monotonic_ns() - start,
                      "load_duration": max(1, load_ns), "prompt_eval_count": 26,
                      "prompt_eval_duration": 1_000_000, "eval_count": len(_tokens(text)) + len(_tokens(thinking)),
                      "eval_duration": eval_ns})
        if out.stream:
            out.emit(final)
            out.finish()
        else:  # non-streamed: one JSON with everything concatenated
            if chat:
                final["message"] = mkmsg(thinking, text)
            else:
                final["response"] = text
                if thinking:
                    final["thinking"] = thinking
            out.finish(final)
    finally:
        out.close()


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

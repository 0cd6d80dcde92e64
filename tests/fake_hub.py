"""A fake Hugging Face Hub API on 127.0.0.1, answering the routes huggingface_hub's HfApi
calls with the real response shapes (huggingface_hub/hf_api.py, the Hub's OpenAPI):

- GET /api/models?search=&filter=gguf&sort=downloads&limit=&expand=...  -> a JSON list of
  {"_id", "id", and the expanded fields (downloads, likes, lastModified)}, most downloaded
  first; without expand, the default fields.
- GET /api/models/{user}/{repo}/tree/{revision}?recursive=true -> [{"type": "file", "oid",
  "size", "path", "lfs": {...}} | {"type": "directory", "oid", "size": 0, "path"}]
- GET /api/models/{user}/{repo} -> model info (siblings, gguf, tags...)
- a missing or private repository -> 401 with X-Error-Code: RepoNotFound (the Hub does not
  say 404, so as not to reveal private names).

Faults: ``slow`` (seconds before any answer), ``status`` (answer every request with it),
``stop()`` (nothing listens). ``headers`` records each request's headers (lower-case names),
so a test can see which carried a token. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional


@dataclass
class FakeRepo:
    id: str
    files: dict[str, int] = field(default_factory=dict)  # path -> size
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-06-01T12:00:00.000Z"
    private: bool = False
    architecture: str = "llama"
    header: Optional[dict] = None
    "GGUF metadata every .gguf file of the repository starts with (None: not a GGUF)."


def write_header(meta: dict) -> bytes:
    """A GGUF header holding ``meta`` (ints as u32, strings, lists of strings)."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b""
    for key, value in meta.items():
        body += s(key)
        if isinstance(value, str):
            body += struct.pack("<I", 8) + s(value)
        elif isinstance(value, list):
            body += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(s(v) for v in value)
        else:
            body += struct.pack("<II", 4, int(value))
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)) + body


LLAMA_1B = {"general.architecture": "llama", "general.name": "Llama 3.2 1B Instruct",
            "llama.block_count": 16, "llama.context_length": 131072,
            "llama.embedding_length": 2048, "llama.attention.head_count": 32,
            "llama.attention.head_count_kv": 8, "llama.attention.key_length": 64,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.tokens": [f"tok{i}" for i in range(128_256)]}


def _oid(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[str] = []
        self.headers: list[dict] = []
        self.resolved: list[str] = []
        self.slow = 0.0
        self.status: Optional[int] = None
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._stopped = threading.Event()
        self._conns: set = set()

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.id.lower()] = repo
        return repo

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "FakeHub":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-hub").start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for conn in list(self._conns):  # a dead Hub takes its keep-alive connections along
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait(self) -> None:
        """Hold an answer for ``slow`` seconds (ends early when the server stops)."""
        self._stopped.wait(self.slow)


def _tree_entries(repo: FakeRepo) -> list[dict]:
    out, dirs = [], set()
    for path, size in sorted(repo.files.items()):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                out.append({"type": "directory", "oid": _oid(d), "size": 0, "path": d})
        entry = {"type": "file", "oid": _oid(path), "size": size, "path": path}
        if path.endswith(".gguf"):
            entry["lfs"] = {"oid": hashlib.sha256(path.encode()).hexdigest(), "size": size,
                            "pointerSize": 135}
        out.append(entry)
    return out


def _listing(repo: FakeRepo, expand: list[str]) -> dict:
    base = {"_id": _oid(repo.id)[:24], "id": repo.id}
    full = {"downloads": repo.downloads, "likes": repo.likes, "lastModified": repo.last_modified,
            "private": False, "tags": ["gguf", "text-generation"],
            "pipeline_tag": "text-generation", "library_name": "gguf",
            "createdAt": "2024-09-25T14:11:54.000Z", "modelId": repo.id, "trendingScore": 3}
    if expand:
        return {**base, **{k: full[k] for k in expand if k in full}}
    return {**base, **full}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.hub._conns.add(self.connection)  # type: ignore[attr-defined]

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the connection was cut by stop()
            self.close_connection = True

    def finish(self) -> None:
        self.server.hub._conns.discard(self.connection)  # type: ignore[attr-defined]
        try:
            super().finish()
        except OSError:
            pass

    def _json(self, status: int, obj, extra: Optional[dict] = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self) -> None:
        self._json(401, {"error": "Repository not found"},
                   {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})

    def do_GET(self) -> None:
        hub: FakeHub = self.server.hub  # type: ignore[attr-defined]
        hub.requests.append(self.path)
        hub.headers.append({k.lower(): v for k, v in self.headers.items()})
        if hub.slow:
            hub.wait()
        if hub.status:
            return self._json(hub.status, {"error": "Internal Error"})
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["api", "models"]:
            return self._search(hub, query)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(hub, parts)
        if len(parts) >= 4 and parts[:2] == ["api", "models"]:
            repo = hub.repos.get(f"{parts[2]}/{parts[3]}".lower())
            if repo is None or repo.private:
                return self._not_found()
            if len(parts) == 4:
                return self._info(repo)
            if len(parts) >= 6 and parts[4] == "tree":
                return self._json(200, _tree_entries(repo))
        self._json(404, {"error": "Sorry, we can't find the page you are looking for."})

    def _resolve(self, hub: FakeHub, parts: list) -> None:
        """/{user}/{repo}/resolve/{revision}/{path}: the file's bytes, with Range support
        (206), as the Hub serves them (after a redirect to its CDN, here the same host)."""
        repo = hub.repos.get(f"{parts[0]}/{parts[1]}".lower())
        path = "/".join(parts[4:])
        if repo is None or repo.private:
            return self._not_found()
        if path not in repo.files:
            return self._json(404, {"error": "Entry not found"},
                              {"X-Error-Code": "EntryNotFound"})
        hub.resolved.append(path)
        data = write_header(repo.header) if repo.header and path.endswith(".gguf") else b""
        start, end = 0, max(len(data) - 1, 0)
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a or 0), min(int(b) if b else end, end)
        body = data[start:end + 1]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{repo.files[path]}")
        self.end_headers()
        self.wfile.write(body)

    def _search(self, hub: FakeHub, query: dict) -> None:
        words = " ".join(query.get("search", [""])).lower().split()
        gguf = "gguf" in query.get("filter", [])
        found = [r for r in hub.repos.values() if not r.private
                 and all(w in r.id.lower() for w in words)
                 and (not gguf or any(p.endswith(".gguf") for p in r.files))]
        if query.get("sort", [""])[0] == "downloads":
            found.sort(key=lambda r: -r.downloads)
        limit = int(query.get("limit", ["1000"])[0])
        self._json(200, [_listing(r, query.get("expand", [])) for r in found[:limit]])

    def _info(self, repo: FakeRepo) -> None:
        self._json(200, {
            **_listing(repo, []), "author": repo.id.split("/")[0], "sha": _oid(repo.id),
            "gated": False, "disabled": False,
            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
            "gguf": {"total": 1_235_814_432, "architecture": repo.architecture,
                     "context_length": 131072},
            "usedStorage": sum(repo.files.values())})


def sample_hub() -> FakeHub:
    """A Hub with a few realistic GGUF repositories (sizes as on the real ones)."""
    hub = FakeHub()
    q = ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"]
    sizes = [580_874_272, 691_261_472, 807_694_464, 911_503_360, 1_021_800_512,
             1_321_082_528, 2_479_595_552]
    hub.add(FakeRepo("bartowski/Llama-3.2-1B-Instruct-GGUF", downloads=250_000, likes=120, files={
        **{f"Llama-3.2-1B-Instruct-{t}.gguf": s for t, s in zip(q, sizes)},
        "README.md": 12_000, ".gitattributes": 2_500}, header=LLAMA_1B))
    hub.add(FakeRepo("unsloth/Llama-3.2-1B-Instruct-GGUF", downloads=90_000, likes=60, files={
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf": 807_694_464,
        "Llama-3.2-1B-Instruct-UD-Q8_K_XL.gguf": 1_600_000_000, "README.md": 9_000}))
    hub.add(FakeRepo("ggml-org/gemma-3-4b-it-GGUF", downloads=150_000, likes=80, files={
        "gemma-3-4b-it-Q4_K_M.gguf": 2_489_757_856, "gemma-3-4b-it-Q8_0.gguf": 4_130_401_312,
        "mmproj-model-f16.gguf": 851_251_104}, architecture="gemma3"))
    hub.add(FakeRepo("someone/Huge-405B-GGUF", downloads=3_000, likes=5, files={
        **{f"Q4_K_M/Huge-405B-Q4_K_M-0000{i}-of-00005.gguf": 49_000_000_000 for i in range(1, 6)},
        "Huge-405B-IQ1_S.gguf": 40_000_000_000}))
    hub.add(FakeRepo("someone/llama-safetensors", downloads=10, files={
        "model.safetensors": 2_000_000_000, "config.json": 800}))
    hub.add(FakeRepo("someone/secret-GGUF", private=True, files={"secret-Q4_K_M.gguf": 1000}))
    return hub


if __name__ == "__main__":  # a Hub to point a real app at: HF_ENDPOINT=<printed url>
    hub = sample_hub().start()
    print(hub.url, flush=True)
    while True:
        time.sleep(3600)

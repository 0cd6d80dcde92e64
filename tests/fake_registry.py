"""A fake model registry on 127.0.0.1: the manifest route of Ollama's registry (the Docker
registry API v2) with the answers the real ones give, and faults to switch on.

GET /v2/<namespace>/<model>/manifests/<tag> with Accept
application/vnd.docker.distribution.manifest.v2+json answers the manifest (config + layers,
each with mediaType, digest and size). A missing model or tag is 404 with the registry's
JSON errors; HEAD is 405 (the real one refuses it too). Faults per name: "400" (plain text, as
hf.co answers for an unknown quant), "redirect-loop", "not-json" (HTML with a JSON content
type), "redirect" (one hop to the real path, as a CDN front does), "slow" (no answer
until released). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
HF_BAD_TAG = ("The specified tag is not a valid quantization scheme. Please use another tag "
              "or \"latest\"")


def manifest(layers: list[int], config_size: int = 485) -> dict:
    """A manifest like Ollama's: the weights first, then template, params, license."""
    kinds = ["model", "template", "params", "license", "system", "projector"]
    return {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": _digest("config", config_size), "size": config_size},
        "layers": [{"mediaType": f"application/vnd.ollama.image.{kinds[i % len(kinds)]}",
                    "digest": _digest(str(i), size), "size": size}
                   for i, size in enumerate(layers)],
    }


def _digest(salt: str, size: int) -> str:
    return "sha256:" + hashlib.sha256(f"{salt}:{size}".encode()).hexdigest()


class FakeRegistry:
    def __init__(self) -> None:
        self.manifests: dict[str, dict] = {}  # "namespace/model:tag" (lower case) -> manifest
        self.faults: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.release = threading.Event()
        self._httpd: Optional[ThreadingHTTPServer] = None

    def add(self, name: str, layers: list[int], config_size: int = 485) -> int:
        """Serve a manifest for ``namespace/model:tag``; returns its total size."""
        self.manifests[name.lower()] = manifest(layers, config_size)
        return sum(layers) + config_size

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "FakeRegistry":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.registry = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-registry").start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _errors(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": {}}]})
        self._send(status, body.encode(), "application/json; charset=utf-8")

    def do_HEAD(self) -> None:
        self.server.registry.requests.append(("HEAD", self.path, dict(self.headers)))
        self._send(405, b"", "text/plain")

    def do_GET(self) -> None:
        reg: FakeRegistry = self.server.registry  # type: ignore[attr-defined]
        reg.requests.append(("GET", self.path, dict(self.headers)))
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 5 or parts[0] != "v2" or parts[3] != "manifests":
            return self._send(404, b"404 page not found", "text/plain")
        _, ns, model, _, tag = parts
        key = f"{ns}/{model}:{tag}".lower()
        fault = reg.faults.get(key, "")
        if fault == "400":
            return self._send(400, HF_BAD_TAG.encode(), "text/plain; charset=utf-8")
        if fault == "redirect-loop":
            return self._send(307, b"", "text/plain", {"Location": self.path})
        if fault == "redirect" and not self.path.endswith("?hop=1"):
            return self._send(307, b"", "text/plain", {"Location": self.path + "?hop=1"})
        if fault == "html-502":  # a CDN's error page in front of the registry
            return self._send(502, b"<html><head><title>502 Bad Gateway</title></head></html>",
                              "text/html")
        if fault == "not-json":
            return self._send(200, b"<html><body>Sign in</body></html>", MANIFEST_TYPE)
        if fault == "slow":
            reg.release.wait(30)
        if key not in reg.manifests:
            return self._errors(404, "MANIFEST_UNKNOWN", "manifest unknown")
        self._send(200, json.dumps(reg.manifests[key]).encode(), MANIFEST_TYPE)

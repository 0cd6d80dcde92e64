"""/api/pull of the fake Ollama (tests/fake_ollama.py), as server/images.go and
server/download.go behave in the recordings of tests/data/ollama-real/.

PullModel sends "pulling manifest", then takes each layer in order (the config last) through
downloadBlob, then "verifying sha256 digest", "writing manifest", "removing unused layers"
(only when a re-pull replaced blobs) and "success". Once the first line is out the status is
200, so every later failure is a final {"error"} line; with stream:false it is an HTTP 500.

A layer already on disk is one line, complete. A layer being downloaded is reported by
Wait()'s ticker: every tick sends the bytes so far, the same value again while nothing
arrives, and nothing once the blob is done, so a layer's last line stays below its size and
a layer done within one tick sends no line at all. The registry's faults keep that shape: a
dropped connection repeats the same value for the 1 s before the retry; a stall repeats it for
the 30 s stall timeout, then the part restarts from its start (completed drops back near 0);
a registry that dies repeats it through the six retries (1+2+...+32 s), then "max retries
exceeded" names the URL the registry redirected the blob to.
"""
from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

from tests.fake_ollama import (INVALID_NAME, Conflict, FakeModel, Name, _Handler, _Out,
                               _progress, _route, _sha, parse_name, parse_ref, pull_name)

STALL_TIMEOUT = 30.0  # download.go: a part with no new bytes for 30 s restarts from its start
RETRY_SLEEPS = (1, 2, 4, 8, 16, 32)  # download.go: 2**try seconds after each failed attempt
NO_LOCATION = "http: no Location header in response"
NOT_TLS = "tls: first record does not look like a TLS handshake"
MISMATCH = "digest mismatch, file must be downloaded again"


class _Stop(Exception):
    """The pull ended with an {"error"} line (or the last line a fault asked for)."""


def _fail(out: _Out, msg: str):
    out.error(msg)
    raise _Stop()


@_route
def h_pull(self, body):
    fake = self.fake
    req = body.get("model") or body.get("name") or ""
    try:  # PullHandler: parseNormalizePullModelRef, then model.ParseName
        n = parse_name(pull_name(req))
    except Conflict as e:
        return self._error(400, str(e))
    if not n.valid_for(fake.name_part_max):
        return self._error(400, INVALID_NAME)
    with fake._lock:
        fake.pull_requests[n.short] += 1
        installed = fake._installed.get(n.key)  # keys are case-folded: EqualFold lookups
        m = fake._remote.get(n.key) or (installed[0] if installed else None)
        if _is_cloud_tag(n.tag) and m is None:
            m = _cloud_stub(fake, n)
        previous = installed[0] if installed else None
    # waitForStream (stream:false) answers a bare application/json with the last progress
    out = _Out(self, body.get("stream") is not False, fake.event_delay, "application/json")
    registry = _Registry(fake, n, bool(body.get("insecure")))
    try:
        out.emit({"status": "pulling manifest"})
        _manifest(out, registry, m)
        downloaded = _Pull(self, out, m, registry).layers()
        _finish(out, fake, m, previous, downloaded)
    except _Stop:
        pass
    finally:
        out.close()


def _manifest(out: _Out, registry: "_Registry", m):
    error = registry.manifest_error()
    if error:
        _fail(out, f"pull model manifest: {error}")
    if m is None:  # registry 404 -> os.ErrNotExist wrapped by pullModelManifest
        _fail(out, "pull model manifest: file does not exist")
    line = registry.fake.faults.pull_error_line
    if line is not None:  # e.g. the newer client's {"code": "not_found", "error": ...}
        out.emit(dict(line))
        out.finish()
        raise _Stop()


def _finish(out: _Out, fake, m: FakeModel, previous, downloaded: list):
    faults = fake.faults
    if not faults.safetensors:  # blobs of the aggregate shape are verified while downloading
        out.emit({"status": "verifying sha256 digest"})
        if faults.digest_mismatch and downloaded:
            want = downloaded[0]
            with fake._lock:
                fake._blobs.pop(want, None)  # verifyBlob removes the file
            _fail(out, f"{MISMATCH}: want {want}, got sha256:{_sha(want + ' one byte flipped')}")
    out.emit({"status": "writing manifest"})
    fake.add_installed(m)
    if previous is not None and set(previous.digests) - set(m.digests):
        out.emit({"status": "removing unused layers"})  # only when blobs were replaced
    if faults.end_without_success:
        out.finish()
        raise _Stop()
    out.emit({"status": "success"})
    out.finish()


def _is_cloud_tag(tag: str) -> bool:
    t = tag.lower()
    return t == "cloud" or t.endswith("-cloud")


def _cloud_stub(fake, n: Name):
    """Pulling a cloud name writes a small stub manifest pointing at ollama.com."""
    base = parse_name(parse_ref(n.short)[0])
    target = fake._cloud.get(base.key)
    if target is None:
        return None
    return FakeModel(name=n.short, layers=[380], family=target.family,
                     parameter_size=target.parameter_size, quantization="",
                     capabilities=list(target.capabilities), context_length=target.context_length,
                     remote_host="https://ollama.com:443", remote_model=base.short)


# --------------------------------------------------------------------------- the registry
class _Registry:
    """The registry a model name points at, as download.go reaches it."""

    def __init__(self, fake, n: Name, insecure: bool):
        self.fake, self.name = fake, n
        self.scheme = "http" if insecure else "https"

    def manifest_error(self):
        n = self.name
        url = f"{self.scheme}://{n.host}/v2/{n.namespace}/{n.model}/manifests/{n.tag}"
        if self.fake.faults.registry_down:
            return f'Get "{url}": {dial_error(url)}'
        plain = {h.lower() for h in self.fake.plain_http_registries}
        if self.scheme == "https" and n.host.lower() in plain:
            return f'Get "{url}": {NOT_TLS}'
        return None

    def blob_url(self, digest: str) -> str:
        """The Location of the registry's 307 for the blob: what download.go fetches."""
        return self.fake.blob_url(self.name, digest)


def dial_error(url: str) -> str:
    """Go's net.Dial error for a host nobody answers at (a name that no longer resolves)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ip = "127.0.0.1" if host == "localhost" else host
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return f"dial tcp: lookup {host}: no such host"
    return f"dial tcp {ip}:{port}: connect: connection refused"


# --------------------------------------------------------------------------- the download
class _Ticker:
    """time.Ticker: fires every `interval` from its start; a slow reader misses ticks instead
    of getting them in a burst. Each wait also notices a client that hung up."""

    def __init__(self, h: _Handler, interval: float):
        self.h, self.interval = h, max(0.0, interval)
        self.next = time.monotonic() + self.interval

    def wait(self):
        self.h._wait(max(0.0, self.next - time.monotonic()))
        now = time.monotonic()
        self.next += self.interval
        if self.next < now:
            self.next = now + self.interval


class _Pull:
    """One pull's layers: downloadBlob for each, in order."""

    def __init__(self, h: _Handler, out: _Out, m: FakeModel, registry: _Registry):
        self.h, self.out, self.m, self.registry = h, out, m, registry
        self.fake, self.faults = h.fake, h.fake.faults
        self.ticks = 0           # ticks with new bytes, over the whole pull
        self.stalled = False     # stall_pull_after fires once per pull
        self.regressed = False

    def layers(self) -> list:
        """Report every layer; returns the digests downloaded (not already on disk)."""
        m, downloaded = self.m, []
        if self.faults.safetensors:
            # images.go pullWithTransfer: one aggregate line per update, no per-layer digests
            segments = [("pulling model", "sha256:model", 0, m.size, list(zip(m.digests, m.layers)))]
        else:  # download.go: layers one after another, status "pulling <digest[7:19]>"
            segments, off = [], 0
            for d, size in zip(m.digests, m.layers):
                segments.append((f"pulling {d[7:19]}", d, off, size, [(d, size)]))
                off += size
        for status, digest, off, size, blobs in segments:
            blob = _Blob(self, status, digest, off, size, blobs)
            if blob.done >= size:  # downloadBlob's cache hit: one report, complete
                self.out.emit(_progress(status, digest, size, size))
                continue
            if self.faults.blob_without_location:  # the registry served the bytes itself
                _fail(self.out, NO_LOCATION)
            blob.download()
            downloaded.append(digest)
        return downloaded


class _Blob:
    """One blob: download.go's part (one part for blobs below 100 MB) and Wait()'s ticker."""

    def __init__(self, pull: _Pull, status: str, digest: str, off: int, size: int, blobs: list):
        self.pull, self.status, self.digest, self.off, self.size = pull, status, digest, off, size
        self.blobs = blobs
        self.done = self._on_disk()
        self.start = self.done  # where the part's attempt began: a stalled part restarts here

    def _on_disk(self) -> int:
        fake = self.pull.fake
        with fake._lock:
            return sum(min(fake._blobs.get(d, 0), size) for d, size in self.blobs)

    def _store(self, done: int, rollback: bool = False):
        """Bytes of the segment -> bytes of each blob, in order. Another pull of the same
        blob may be further along: only a rolled-back attempt makes the partial shrink."""
        fake = self.pull.fake
        with fake._lock:
            for d, size in self.blobs:
                have = max(0, min(done, size))
                fake._blobs[d] = have if rollback else max(have, fake._blobs.get(d, 0))
                done -= size

    def download(self):
        fake = self.pull.fake
        interval, step = (fake.tick, fake.tick_bytes) if fake.ticker else (
            fake.event_delay, fake.chunk_size)
        ticker = _Ticker(self.pull.h, interval)
        while True:
            ticker.wait()
            self.done = min(self.size, self._advance(max(1, int(step))))
            self._store(self.done)
            line = None
            if self.done < self.size:  # Wait() returns once the blob is done: no final tick
                line = _progress(self.status, self.digest, self.size, self.done)
                self._report(line)
            self.pull.ticks += 1
            self._faults(line)
            if line is None:
                return

    def _report(self, line: dict):
        for _ in range(max(1, self.pull.fake.tick_repeats)):
            self.pull.out.emit(line, delay=0)

    def _advance(self, step: int) -> int:
        """Bytes after one more tick, landing exactly on a fault's byte if one is crossed."""
        f = self.pull.faults
        target = self.done + step
        for limit in (f.drop_pull_after, f.stall_pull_after, f.registry_drop_at,
                      f.registry_stall_at, f.registry_gone_at):
            if limit is not None and self.off + self.done < limit < self.off + target:
                target = limit - self.off
        return target

    def _faults(self, line):
        pull, f, pos = self.pull, self.pull.faults, self.off + self.done
        if f.pull_error and pull.ticks == 1:  # e.g. disk full on the first write
            _fail(pull.out, f.pull_error.replace("{hex}", self.pull.m.digests[0][7:] if
                                                 self.digest == "sha256:model" else self.digest[7:]))
        if line is None:
            return
        if f.drop_pull_after is not None and pos >= f.drop_pull_after:
            pull.h._abort()
        if f.stall_pull_after is not None and pos >= f.stall_pull_after and not pull.stalled:
            pull.stalled = True
            _stall(pull.h, pull.out, line)
        if f.registry_drop_at is not None and pos >= f.registry_drop_at:
            f.registry_drop_at = None  # unexpected EOF: the bytes so far count, retry in 1 s
            self._hold(RETRY_SLEEPS[0], line)
            self.start = self.done
        if f.registry_stall_at is not None and pos >= f.registry_stall_at:
            f.registry_stall_at = None  # errPartStalled after 30 s: the attempt is rolled back
            self._hold(STALL_TIMEOUT, line)
            self._restart()
        if f.registry_gone_at is not None and pos >= f.registry_gone_at:
            f.registry_gone_at = None  # six attempts, then the last dial error
            self._hold(sum(RETRY_SLEEPS), line)
            url = pull.registry.blob_url(self.digest)
            _fail(pull.out, f'max retries exceeded: Get "{url}": {dial_error(url)}')
        if f.regress and pull.ticks >= 2 and not pull.regressed:
            pull.regressed = True
            self._restart()

    def _hold(self, seconds: float, line: dict):
        """No bytes for `seconds` (x time_scale): the ticker repeats the same value."""
        fake = self.pull.fake
        end = time.monotonic() + seconds * fake.time_scale
        ticker = _Ticker(self.pull.h, fake.tick)
        while True:
            ticker.wait()
            if time.monotonic() >= end:
                return
            self._report(line)

    def _restart(self):
        self.done = self.start
        self._store(self.done, rollback=True)


def _stall(h: _Handler, out: _Out, line: dict):
    """Hold the stream open until release(); optionally repeat the line every tick."""
    fake = h.fake
    with fake._lock:
        gen = fake._release_gen
    while True:
        with fake._release:
            if fake._release_gen != gen or fake._stopping.is_set():
                return
            fake._release.wait(min(0.05, fake.tick) if fake.faults.stall_repeat else 0.05)
        if fake.faults.stall_repeat and out.stream:
            out.emit(line, delay=0)
        elif not h._alive():
            h._gone()

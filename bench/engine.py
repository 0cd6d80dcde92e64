"""Benchmarks of the pull engine itself (issue 9): what a consumer costs while Ollama is
silent, and a pull at the real server's pace (a report every 60 ms per layer, no final tick).
Run from bench/run.py, first, while the benchmark process has no other threads."""

from __future__ import annotations

import threading
import time
from typing import Callable

import ollama
import psutil

import contextpilot as cp
from bench.harness import Fake, median

Row = Callable[[str, str, str, str, bool], None]
ENGINE_THREADS = ("pull ", "stall ")


def _cpu_of(native_ids: set) -> float:
    """CPU seconds used so far by these threads of this process: Linux's schedstat (in ns),
    else psutil's user + system times (in clock ticks, 10 ms)."""
    try:
        return sum(int(open(f"/proc/self/task/{tid}/schedstat").read().split()[0])
                   for tid in native_ids) / 1e9
    except OSError:
        return sum(t.user_time + t.system_time for t in psutil.Process().threads()
                   if t.id in native_ids)


def bench_idle(fake: Fake, row: Row, seconds: float) -> None:
    """A consumer blocked in next() while the fake holds the stream open, silent, mid-pull
    (a big blob being verified, a stalled registry): the CPU its threads use."""
    fake.config(faults={"stall_pull_after": 1_000_000})
    gen = cp.pull_model("stall-pull", fake.url)  # the default stall limit (120 s)
    while next(gen).completed < 1_000_000:
        pass
    result: dict = {}

    def wait() -> None:
        try:
            result["value"] = next(gen)
        except cp.ContextPilotError as exc:
            result["error"] = exc

    consumer = threading.Thread(target=wait, name="idle consumer", daemon=True)
    consumer.start()
    time.sleep(0.2)  # the consumer is asleep in next() by now
    ids = {t.native_id for t in threading.enumerate()
           if t is consumer or t.name.startswith(ENGINE_THREADS)}
    cpu0, proc0, wall0 = _cpu_of(ids), time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, proc, wall = _cpu_of(ids) - cpu0, time.process_time() - proc0, time.monotonic() - wall0
    cp.cancel_pull("stall-pull", fake.url)
    consumer.join(5)
    fake.reset()
    assert isinstance(result.get("error"), cp.PullCancelled), result
    share, whole = cpu / wall, proc / wall
    row(f"idle: a consumer waiting through {wall:.0f} s of silence mid-pull",
        f"{cpu * 1000:.2f} ms CPU = {share:.4%} of one core ({len(ids)} threads: consumer, "
        f"pull, stall; whole process {whole:.3%})", f"ratio to target {share / 0.01:.3f}",
        "< 1% of one core", share < 0.01)


def _server_times(fake: Fake, name: str) -> tuple[dict, dict]:
    """When the fake wrote each event: keyed as the library reports it (the layer, and the
    whole-model count: the sum of each layer's last report) and as the raw client sees it."""
    lib, raw, layers = {}, {}, {}
    for t, digest, done in fake.stats()["cadence"][f"{name}:latest"]:
        layers[digest] = done
        lib[(digest, sum(layers.values()))] = t
        raw[(digest, done)] = t
    return lib, raw


def _raw_cadence(url: str, name: str) -> tuple[float, list]:
    client = ollama.Client(host=url)
    t0, seen = time.monotonic(), []
    for event in client.pull(name, stream=True):
        seen.append((time.monotonic(), event.digest, event.completed))
    return time.monotonic() - t0, seen


def _lib_cadence(url: str, name: str) -> tuple[float, list]:
    t0, seen = time.monotonic(), []
    for value in cp.pull_model(name, url):
        seen.append((time.monotonic(), value.digest, value.completed))
    assert value.done
    return time.monotonic() - t0, seen


def _latencies(seen: list, sent: dict) -> list[float]:
    return [t - sent[(d, c)] for t, d, c in seen if (d, c) in sent]


def bench_cadence(fake: Fake, row: Row, repeats: int) -> None:
    print("0b. pull at Ollama's real cadence (a report every 60 ms per layer)", flush=True)
    names = iter(f"cadence-{i}" for i in range(2 * repeats))
    raw_t, lib_t, raw_lat, lib_lat = [], [], [], []
    for _ in range(repeats):  # interleaved, so that a disturbance hits both alike
        name = next(names)
        seconds, seen = _raw_cadence(fake.url, name)
        raw_t.append(seconds)
        raw_lat += _latencies(seen, _server_times(fake, name)[1])
        name = next(names)
        seconds, seen = _lib_cadence(fake.url, name)
        lib_t.append(seconds)
        lib_lat += _latencies(seen, _server_times(fake, name)[0])
    r_raw, r_lib = median(raw_t), median(lib_t)
    row("pull at Ollama's cadence via contextpilot.pull_model (30 MB, 50 reports)",
        f"{r_lib:.3f} s", f"raw {r_raw:.3f} s, adds {(r_lib / r_raw - 1):+.2%}", "adds <= 2%",
        r_lib / r_raw <= 1.02)
    lat = median(lib_lat) * 1000
    row("pull at Ollama's cadence: server writes an event -> the consumer has it",
        f"{lat:.2f} ms (median of {len(lib_lat)}; worst {max(lib_lat) * 1000:.1f} ms)",
        f"raw client {median(raw_lat) * 1000:.2f} ms (median of {len(raw_lat)})",
        "<= 20 ms", lat <= 20)


def bench_engine(fake: Fake, row: Row, quick: bool) -> None:
    print("0. the pull engine: idle cost", flush=True)
    bench_idle(fake, row, 2.0 if quick else 10.0)
    bench_cadence(fake, row, 1 if quick else 3)

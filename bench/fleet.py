"""ContextPilot benchmarks for a fleet (issue 18): several Ollama hosts used as one, each a fake
Ollama in its own process that answers at most K chats at once and queues the rest (like
OLLAMA_NUM_PARALLEL). Every figure is compared with its baseline measured in the same run.

    python bench/fleet.py           # the full run (~1.5 min on 2 cores)
    python bench/fleet.py --quick   # a smaller smoke run (< 40 s)

1. 16 users x 2 s answers: wall time on two hosts vs one host (the same library, a fleet of
   one), with the model loaded on both hosts, and loaded on one host only.
2. Time to the first token through the router vs the raw ``ollama`` client on the same host.
3. Listing the models of 3 hosts (one slow to list) vs the slowest host alone; and with a 4th
   host that accepts the connection and never answers, bounded by the read limit.

Prints one table: figure, baseline, ratio or difference, target, PASS/FAIL. Exit code 1 when
a target fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ollama  # noqa: E402

import contextpilot as cp  # noqa: E402
from bench.report import row, table  # noqa: E402
from tests.fake_fleet import mute_host  # noqa: E402

HI = [{"role": "user", "content": "hi"}]
K = 4
"Answers each fake host streams at once (OLLAMA_NUM_PARALLEL)."


class Host:
    """bench/fleet_host.py in a child process; stdin closing stops it."""

    def __init__(self, **config) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fleet_host.py"), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.url = self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


# ----------------------------------------------------------------------------- 1. 16 users


def users_at_once(fleet: cp.Fleet, users: int) -> float:
    """Wall time for ``users`` chats started together, each read to its end."""
    start = threading.Barrier(users + 1)
    failures: list[BaseException] = []

    def user() -> None:
        start.wait()
        try:
            for _ in fleet.chat_stream("answer", HI):
                pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=user) for _ in range(users)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return time.monotonic() - t0


def bench_users(a: Host, b: Host, users: int, rounds: int) -> None:
    print(f"1. {users} users x 2 s answers, hosts answering {K} at once", flush=True)
    one = cp.Fleet({"gpu1": a.url})
    cp.load_model("answer", host=a.url)
    cp.load_model("answer", host=b.url)
    two = cp.Fleet({"gpu1": a.url, "gpu2": b.url})
    base = statistics.median(users_at_once(one, users) for _ in range(rounds))
    both = statistics.median(users_at_once(two, users) for _ in range(rounds))
    row(f"{users} users, 2 s answers, two hosts (loaded on both)", f"{both:.2f} s",
        f"one host {base:.2f} s = {both / base:.2f}x (ideal 0.50x)", "<= 0.60x",
        both / base <= 0.60)
    cp.unload_model("answer", host=b.url)
    cold = cp.Fleet({"gpu1": a.url, "gpu2": b.url})  # knows nothing yet: loaded on gpu1 only
    spread = users_at_once(cold, users)
    row(f"{users} users, two hosts, loaded on gpu1 only", f"{spread:.2f} s",
        f"one host {base:.2f} s = {spread / base:.2f}x (a full loaded host lets an idle one "
        f"take the next)", "<= 0.60x", spread / base <= 0.60)
    cp.unload_model("answer", host=b.url)
    strict = cp.Fleet({"gpu1": a.url, "gpu2": b.url}, busy_after=10**9)
    only = users_at_once(strict, users)
    row(f"{users} users, loaded on gpu1 only, 'loaded' always first (busy_after off)",
        f"{only:.2f} s", f"one host {base:.2f} s = {only / base:.2f}x: the model never "
        f"spreads", "info", True)


# ----------------------------------------------------------------------------- 2. first token


def raw_first_token(client: ollama.Client) -> float:
    t0 = time.monotonic()
    stream = client.chat(model="echo", messages=HI, stream=True)
    for part in stream:
        if part.message.content:
            first = time.monotonic() - t0
            for _ in stream:  # read it to its end, as a chat does
                pass
            return first
    raise AssertionError("no answer")


def lib_first_token(events) -> float:
    t0 = time.monotonic()
    first = None
    for event in events:
        if first is None and isinstance(event, cp.ContentDelta):
            first = time.monotonic() - t0
    assert first is not None
    return first


def bench_first_token(a: Host, b: Host, repeats: int) -> None:
    print("2. time to the first token: the router vs the host directly", flush=True)
    fleet = cp.Fleet({"gpu1": a.url, "gpu2": b.url})
    host = fleet.route("echo")[0]
    client = ollama.Client(host=fleet.url(host))
    raw, routed, lib = [], [], []
    for _ in range(3):  # warm: connections, the hosts' facts, the model loaded
        raw_first_token(client)
        lib_first_token(fleet.chat_stream("echo", HI))
    for _ in range(repeats):  # interleaved, so that the machine's load hits all three
        raw.append(raw_first_token(client))
        routed.append(lib_first_token(fleet.chat_stream("echo", HI)))
        lib.append(lib_first_token(cp.chat_stream("echo", HI, host=fleet.url(host))))
    r, f, one = (statistics.median(x) * 1000 for x in (raw, routed, lib))
    row("first token via Fleet.chat_stream (2 hosts, facts known)", f"{f:.1f} ms (median)",
        f"raw client {r:.1f} ms, adds {f - r:+.1f} ms; cp.chat_stream (one host) adds "
        f"{one - r:+.1f} ms", "adds <= 5 ms", f - r <= 5.0)
    cold = []
    for _ in range(max(3, repeats // 5)):
        fresh = cp.Fleet({"gpu1": a.url, "gpu2": b.url})  # asks both hosts what they have
        cold.append(lib_first_token(fresh.chat_stream("echo", HI)))
    c = statistics.median(cold) * 1000
    row("first token, a new Fleet (asks each host /api/tags + /api/ps first)", f"{c:.1f} ms",
        f"raw client {r:.1f} ms, adds {c - r:+.1f} ms", "info", True)


# ----------------------------------------------------------------------------- 3. listing


def timed(call) -> float:
    t0 = time.monotonic()
    call()
    return time.monotonic() - t0


def bench_listing(repeats: int) -> None:
    print("3. listing the models of 3 hosts (one slow to list)", flush=True)
    hosts = [Host(parallel=K, list_delay=d) for d in (0.1, 0.2, 0.3)]
    try:
        fleet = cp.Fleet({f"gpu{i + 1}": h.url for i, h in enumerate(hosts)})
        slowest = hosts[-1].url
        one = statistics.median(timed(lambda: cp.list_models(slowest)) for _ in range(repeats))
        each = sum(statistics.median(timed(lambda: cp.list_models(h.url)) for _ in range(3))
                   for h in hosts)
        many = statistics.median(timed(fleet.list_models) for _ in range(repeats))
        row("list_models on 3 hosts (0.1 / 0.2 / 0.3 s to list)", f"{many * 1000:.0f} ms",
            f"slowest host alone {one * 1000:.0f} ms = {many / one:.2f}x (one after another: "
            f"{each * 1000:.0f} ms)", "<= 1.10x", many / one <= 1.10)
        os.environ["CONTEXTPILOT_READ_TIMEOUT"] = "1"
        listed: list = []

        def silent_alone(url: str) -> None:
            with contextlib.suppress(cp.ContextPilotError):
                cp.list_models(url)

        with mute_host() as mute:
            urls = {f"gpu{i + 1}": h.url for i, h in enumerate(hosts)} | {"gpu4": mute}
            alone = statistics.median(timed(lambda: silent_alone(mute)) for _ in range(3))
            hung = statistics.median(
                timed(lambda: listed.extend(cp.Fleet(urls).list_models())) for _ in range(3))
        del os.environ["CONTEXTPILOT_READ_TIMEOUT"]
        seen = sorted({h for m in listed for h in m.hosts})
        row("list_models on 4 hosts, one never answers (read limit 1 s)", f"{hung:.2f} s",
            f"the silent host alone {alone:.2f} s = {hung / alone:.2f}x; listed from "
            f"{', '.join(seen)}", "<= 1.25x", hung / alone <= 1.25
            and seen == ["gpu1", "gpu2", "gpu3"])
    finally:
        for h in hosts:
            h.close()


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (< 40 s)")
    q = parser.parse_args().quick
    for key in [k for k in os.environ if k.startswith(("OLLAMA_", "CONTEXTPILOT_"))]:
        del os.environ[key]  # the hosts are named here; nothing from the caller's setup
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{'quick' if q else 'full'} run", flush=True)
    started = time.monotonic()
    a, b = Host(parallel=K, token_delay=0.1), Host(parallel=K, token_delay=0.1)
    try:
        bench_first_token(a, b, 10 if q else 40)
        bench_users(a, b, 8 if q else 16, 1 if q else 3)
    finally:
        a.close()
        b.close()
    bench_listing(3 if q else 7)
    return table(started)


if __name__ == "__main__":
    sys.exit(main())

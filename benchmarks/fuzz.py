"""Fuzz a live session's control socket: answered, silent, and whether the loop noticed.

    python benchmarks/fuzz.py [--requests 100000] [--seed 0] [--json FILE] [--overwrite]

A session runs the embedded demo bundle on the synthetic camera at 100 FPS with the stream and
control socket on loopback. A client sends ``--requests`` control requests, one at a time, drawn
from: random bytes, mutations of valid requests (bit flips, cuts, insertions, duplications),
random msgpack structures built byte by byte (including maps keyed by maps or lists, which
Python cannot hold), and control-shaped maps with wrong types and extra fields. For each: was it
answered (``ok`` true or false) or silent (no reply within the timeout)? The loop's frame rate
and drops are compared between a quiet period before the fuzz and the fuzz itself, and the
control thread's deaths are read from the supervision registry.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.stream import ControlClient, ControlTimeoutError
from realtime_pose.util.paths import DEMO_BUNDLE
from realtime_pose.util.supervision import REGISTRY

COMMANDS = ["ping", "meta", "status", "record_start", "record_stop", "rule_enable", "rule_disable"]
FIELDS = ["cmd", "id", "token", "path", "video", "name"]


def _scalar(rng: random.Random) -> bytes:
    choice = rng.randrange(7)
    value = [
        None,
        rng.random() < 0.5,
        rng.randint(-(2**63), 2**64 - 1),
        rng.uniform(-1e300, 1e300),
        "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(12))),
        rng.randbytes(rng.randrange(12)),
        rng.choice(COMMANDS),
    ][choice]
    return msgpack.packb(value, use_bin_type=True)


def _structure(rng: random.Random, depth: int = 0) -> bytes:
    """Raw msgpack of random shape; map keys may be maps or lists (valid, unhashable)."""
    if depth > 3 or rng.random() < 0.4:
        return _scalar(rng)
    n = rng.randrange(5)
    if rng.random() < 0.5:
        return bytes([0x90 | n]) + b"".join(_structure(rng, depth + 1) for _ in range(n))
    pairs = b"".join(_structure(rng, depth + 1) + _structure(rng, depth + 1) for _ in range(n))
    return bytes([0x80 | n]) + pairs


def _control_like(rng: random.Random) -> bytes:
    request = {rng.choice(FIELDS): msgpack.unpackb(_scalar(rng)) for _ in range(rng.randrange(5))}
    if rng.random() < 0.7:
        request["cmd"] = rng.choice(COMMANDS)
    return msgpack.packb(request, use_bin_type=True)


def _mutated(rng: random.Random) -> bytes:
    data = bytearray(msgpack.packb({"cmd": rng.choice(COMMANDS), "id": rng.randrange(1000)}))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data)) if data else 0
        op = rng.randrange(4)
        if op == 0 and data:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[i:]
        elif op == 2:
            data[i:i] = rng.randbytes(rng.randint(1, 8))
        else:
            data[i:i] = data[i : i + rng.randint(1, 16)]
    return bytes(data)


GENERATORS = {
    "random_bytes": lambda rng: rng.randbytes(rng.randrange(64)),
    "mutated": _mutated,
    "structure": _structure,
    "control_like": _control_like,
}


def _fuzz_client(address: str, n: int, seed: int, timeout_ms: int) -> tuple[dict, list[int]]:
    """Send ``n`` generated requests; count answers by generator; reply latencies (ns)."""
    client = ControlClient(address, timeout_ms=timeout_ms)
    rng = random.Random(seed)
    names = list(GENERATORS)
    counts = {name: {"sent": 0, "ok": 0, "refused": 0, "silent": 0} for name in names}
    latencies = []
    for i in range(n):
        name = names[i % len(names)]
        data = GENERATORS[name](rng)
        row = counts[name]
        row["sent"] += 1
        t_send = time.monotonic_ns()
        try:
            reply = client.request_bytes(data)
        except ControlTimeoutError:
            row["silent"] += 1
            continue
        latencies.append(time.monotonic_ns() - t_send)
        row["ok" if reply.get("ok") is True else "refused"] += 1
    client.close()
    return counts, latencies


def _frames_per_s(session: LiveSession, seconds: float) -> tuple[float, int]:
    frames0, dropped0 = session.pipeline.frames, session.grabber.stats()["dropped"]
    time.sleep(seconds)
    frames = session.pipeline.frames - frames0
    return frames / seconds, session.grabber.stats()["dropped"] - dropped0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-ms", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    # record_start requests carry fuzzed paths, relative to the recording folder: a temporary one
    workdir = Path(tempfile.mkdtemp(prefix="rp-fuzz-"))
    config = parse_config(
        {
            "source": {"kind": "synthetic", "width": 320, "height": 240, "fps": 100},
            "bundle": str(DEMO_BUNDLE),
            "engine": {"threads": 1, "spinning": False},
            "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
            "recording": {"directory": str(workdir / "recordings")},
        },
        "fuzz",
    )
    session = LiveSession(config)
    runner = threading.Thread(target=session.run, name="fuzzed-session", daemon=True)
    runner.start()
    time.sleep(2.0)  # warm
    quiet_fps, quiet_drops = _frames_per_s(session, 5.0)
    deaths_before = REGISTRY.death_count
    frames0, dropped0 = session.pipeline.frames, session.grabber.stats()["dropped"]
    t0 = time.monotonic()
    # the client is another process, as a user's program would be: its own CPU time and GIL
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        counts, latencies = pool.apply(
            _fuzz_client,
            (session.control.bound_address, args.requests, args.seed, args.timeout_ms),
        )
    fuzz_s = time.monotonic() - t0
    fuzz_fps = (session.pipeline.frames - frames0) / fuzz_s
    fuzz_drops = session.grabber.stats()["dropped"] - dropped0
    client = ControlClient(session.control.bound_address, timeout_ms=args.timeout_ms)
    ping = client.request("ping")
    after_fps, after_drops = _frames_per_s(session, 5.0)
    client.close()
    session.stop_event.set()
    runner.join(10)
    session.close()
    shutil.rmtree(workdir, ignore_errors=True)
    total = {k: sum(row[k] for row in counts.values()) for k in ("sent", "ok", "refused", "silent")}
    result = {
        "requests": args.requests,
        "seed": args.seed,
        "by_generator": counts,
        "total": total,
        "answered": total["ok"] + total["refused"],
        "silent": total["silent"],
        "reply_latency": summarize_ns(latencies, "us"),
        "ping_after_fuzz": bool(ping.get("ok")),
        "thread_deaths_during_fuzz": REGISTRY.death_count - deaths_before,
        "loop": {
            "fps_quiet_before": round(quiet_fps, 2),
            "fps_during_fuzz": round(fuzz_fps, 2),
            "fps_quiet_after": round(after_fps, 2),
            "drops_quiet_before_5s": quiet_drops,
            "drops_during_fuzz": fuzz_drops,
            "drops_quiet_after_5s": after_drops,
            "fuzz_seconds": round(fuzz_s, 1),
        },
    }
    path = write_result("fuzz", result, args.json, overwrite=args.overwrite)
    print(
        f"{args.requests} requests in {fuzz_s:.1f} s: answered {result['answered']} "
        f"(ok {total['ok']}, refused {total['refused']}), silent {total['silent']}; "
        f"thread deaths {result['thread_deaths_during_fuzz']}; loop {quiet_fps:.1f} FPS before, "
        f"{fuzz_fps:.1f} during, {after_fps:.1f} after (drops {quiet_drops}/{fuzz_drops}/"
        f"{after_drops}); wrote {path}"
    )
    return 0 if total["silent"] == 0 and ping.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())

"""Serial output latency: from ``pulse()`` to the command at the far end of a pseudo-terminal.

    python benchmarks/serial_latency.py [--pulses 2000] [--gap-ms 2] [--json FILE]

Five measurements, each over ``--pulses`` actions spaced ``--gap-ms`` apart (so each is timed
alone, not queued behind the previous one):

``raw_pty_write``
    ``os.write`` of a pulse line on the host end of a pty pair until a reader thread on the far
    end has it: the floor set by the kernel and one thread wake-up.
``pulse_to_far_end``
    ``SerialDevice.pulse()`` (queue, writer thread, pyserial write) until the far end has the
    line; also the time ``pulse()`` itself takes on the caller's thread (``pulse_call``).
``dispatcher_pty``
    The same through ``OutputDispatcher.kick()`` + ``submit("laser", "pulse", ...)``, as the live
    loop calls it once per frame.
``pulse_to_emulator_edge``
    ``SerialDevice.pulse()`` until the output edge of the board emulator, running as a separate
    process (``python -m realtime_pose.hardware.testing.emulator``; its JSONL log stamps the
    edge with the same system-wide monotonic clock).
``echo_round_trip``
    ``SerialDevice.echo()`` against that emulator process: host -> board -> host.

A real board adds its USB stack (full-speed CDC: 1 ms polling; Teensy high-speed: 125 us
micro-frames) and, for UART boards, ~87 us per byte at 115200 baud; see
``docs/serial-protocol.md``. Writes p50/p99/max in microseconds and the machine's description to
``benchmarks/results/serial_latency.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.hardware.dispatcher import OutputDispatcher
from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.emulator import read_log, start_emulator_process
from realtime_pose.hardware.testing.loopback import FarEndReader, open_pty_pair

PULSE_MS = 0.2


def _spaced(gap_s: float, t_last: float) -> float:
    """Sleep until ``gap_s`` after ``t_last``; return now."""
    left = gap_s - (time.perf_counter() - t_last)
    if left > 0:
        time.sleep(left)
    return time.perf_counter()


def _wait_lines(reader: FarEndReader, prefix: str, n: int, timeout_s: float) -> list[int]:
    """Arrival times of the first ``n`` far-end lines starting with ``prefix``."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = [t for t, line in reader.wait_for(0, 0) if line.startswith(prefix)]
        if len(got) >= n or time.monotonic() > deadline:
            return got[:n]
        time.sleep(0.01)


def bench_raw_pty(n: int, gap_s: float) -> dict:
    pair = open_pty_pair()
    fd = os.open(pair.device_path, os.O_RDWR | os.O_NOCTTY)
    reader = FarEndReader(pair.far_fd)
    t_write: list[int] = []
    try:
        t_last = 0.0
        for _ in range(n):
            t_last = _spaced(gap_s, t_last)
            t_write.append(time.monotonic_ns())
            os.write(fd, b"P 0 0.2\n")
        arrivals = _wait_lines(reader, "P ", n, 10.0)
    finally:
        reader.stop()
        os.close(fd)
        pair.close()
    if len(arrivals) != n:
        raise RuntimeError(f"raw pty: {len(arrivals)} of {n} lines arrived")
    return {
        "write_to_far_end": summarize_ns([a - w for a, w in zip(arrivals, t_write, strict=True)])
    }


def bench_pulse_to_far_end(n: int, gap_s: float) -> dict:
    pair = open_pty_pair()
    reader = FarEndReader(pair.far_fd)
    device = SerialDevice(pair.device_path, channels=1, watchdog_ms=0, configure_board=False)
    t_call: list[int] = []
    call_ns: list[int] = []
    try:
        device.open()
        t_last = 0.0
        for _ in range(n):
            t_last = _spaced(gap_s, t_last)
            t0 = time.monotonic_ns()
            device.pulse(0, PULSE_MS / 1000)
            t1 = time.monotonic_ns()
            t_call.append(t0)
            call_ns.append(t1 - t0)
        arrivals = _wait_lines(reader, "P ", n, 10.0)
        health = device.health()
    finally:
        device.close()
        reader.stop()
        pair.close()
    if len(arrivals) != n:
        raise RuntimeError(f"pulse_to_far_end: {len(arrivals)} of {n} lines arrived ({health})")
    return {
        "pulse_call": summarize_ns(call_ns),
        "pulse_to_far_end": summarize_ns([a - t for a, t in zip(arrivals, t_call, strict=True)]),
        "device_health": health.to_dict(),
    }


def bench_dispatcher_to_far_end(n: int, gap_s: float) -> dict:
    pair = open_pty_pair()
    reader = FarEndReader(pair.far_fd)
    device = SerialDevice(pair.device_path, channels=1, watchdog_ms=0, configure_board=False)
    t_call: list[int] = []
    call_ns: list[int] = []
    dispatcher = OutputDispatcher(
        {"laser": (device, 0)}, stall_timeout_s=1.0, register_atexit=False
    )
    try:
        t_last = 0.0
        for i in range(n):
            t_last = _spaced(gap_s, t_last)
            t0 = time.monotonic_ns()
            dispatcher.kick()
            dispatcher.submit("laser", "pulse", PULSE_MS / 1000, frame_index=i, t_frame_ns=t0)
            t1 = time.monotonic_ns()
            t_call.append(t0)
            call_ns.append(t1 - t0)
        arrivals = _wait_lines(reader, "P ", n, 10.0)
        health = device.health()
    finally:
        dispatcher.close()
        reader.stop()
        pair.close()
    if len(arrivals) != n:
        raise RuntimeError(f"dispatcher: {len(arrivals)} of {n} lines arrived ({health})")
    return {
        "kick_and_submit_call": summarize_ns(call_ns),
        "submit_to_far_end": summarize_ns([a - t for a, t in zip(arrivals, t_call, strict=True)]),
        "device_health": health.to_dict(),
    }


def bench_emulator(n: int, gap_s: float, workdir: Path) -> dict:
    link = workdir / "rig-bench"
    log_path = workdir / "emulator.jsonl"
    emu = start_emulator_process(link, log_path, n_channels=2)
    device = SerialDevice(str(link), channels=2, max_on_s=1.0)
    t_call: list[int] = []
    rtt_ns: list[int] = []
    try:
        device.open()
        time.sleep(0.2)  # let the configuration lines (C, M, W) through first
        t_last = 0.0
        for i in range(n):
            t_last = _spaced(gap_s, t_last)
            t_call.append(time.monotonic_ns())
            device.pulse(i % 2, PULSE_MS / 1000)
        time.sleep(0.5)
        for _ in range(n):
            t_last = _spaced(gap_s, t_last)
            rtt = device.echo(timeout_s=2.0)
            if rtt is not None:
                rtt_ns.append(rtt)
        health = device.health()
    finally:
        device.close()
        emu.stop()
    pulses = [r for r in read_log(log_path) if r["event"] == "rx" and r["line"].startswith("P ")]
    edges = {
        r["t_ns"]
        for r in read_log(log_path)
        if r["event"] == "edge" and r["on"] and r["cause"] == "P"
    }
    if len(pulses) != n:
        raise RuntimeError(f"emulator: {len(pulses)} of {n} pulses arrived ({health})")
    # The emulator stamps a line's arrival and the edge it makes with the same read time.
    edge_ns = [r["t_ns"] - t for r, t in zip(pulses, t_call, strict=True) if r["t_ns"] in edges]
    return {
        "pulse_to_emulator_edge": summarize_ns(edge_ns),
        "pulses_with_an_edge": len(edge_ns),
        "echo_round_trip": summarize_ns(rtt_ns),
        "echo_timeouts": n - len(rtt_ns),
        "device_health": health.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pulses", type=int, default=2000)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="time between actions")
    parser.add_argument("--json", type=Path, help="output file (default: benchmarks/results/)")
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    n, gap_s = args.pulses, args.gap_ms / 1000

    results: dict = {}
    results["raw_pty_write"] = bench_raw_pty(n, gap_s)
    print("raw pty write -> far end:", results["raw_pty_write"]["write_to_far_end"])
    results["serial_device_pty"] = bench_pulse_to_far_end(n, gap_s)
    print("pulse() call:", results["serial_device_pty"]["pulse_call"])
    print("pulse() -> far end:", results["serial_device_pty"]["pulse_to_far_end"])
    results["dispatcher_pty"] = bench_dispatcher_to_far_end(n, gap_s)
    print("kick() + submit() call:", results["dispatcher_pty"]["kick_and_submit_call"])
    print("submit() -> far end:", results["dispatcher_pty"]["submit_to_far_end"])
    with tempfile.TemporaryDirectory(prefix="serial-bench-") as tmp:
        results["emulator_process"] = bench_emulator(n, gap_s, Path(tmp))
    print("pulse() -> emulator edge:", results["emulator_process"]["pulse_to_emulator_edge"])
    print("echo round trip:", results["emulator_process"]["echo_round_trip"])

    load = None
    with contextlib.suppress(OSError):
        load = [round(x, 2) for x in os.getloadavg()]
    path = write_result(
        "serial_latency",
        {
            "config": {
                "pulses": n,
                "gap_ms": args.gap_ms,
                "pulse_ms": PULSE_MS,
                "link": "os.openpty() pair (no USB, no UART)",
                "pyserial": metadata.version("pyserial"),
                "load_average_1_5_15min": load,
            },
            "results": results,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

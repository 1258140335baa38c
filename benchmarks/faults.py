"""The fault suite: break what a rig depends on, mid-run, and write down what the loop did.

    python benchmarks/faults.py [--only NAME ...] [--kills 20] [--json FILE] [--overwrite]

One row per fault: what was done, what the loop did, frames lost, time to recover, anything lost
on disk, and whether the expectation held. Faults:

- ``camera_stream_restart``: a network camera (ffmpeg serving MPEG-TS over TCP on 127.0.0.1) is
  killed mid-run and restarted; the grabber must reconnect with back-off and the loop go on.
- ``video_truncated``: a video file cut to half its bytes; the source must end cleanly and say so.
- ``serial_unplugged``: the board (the emulator on a pty) vanishes for 2 s and comes back at the
  same port; actions while unplugged are logged as failed, the device reconnects.
- ``subscribers``: a subscriber that never reads, one that reads slowly and one killed mid-stream;
  the loop's latency must not change and the publisher must count its drops.
- ``sigkill_recording``: ``realtime-pose run`` killed with SIGKILL at random moments; every log
  must read back, hold every pose published except at most the last, and convert.
- ``disk_full``: the recording's folder is a 192 KiB tmpfs; recording must stop with a status and
  an event while the loop and the outputs go on, and what was written must read back.
- ``host_stall_laser_on``: the session process is SIGSTOPped for 2 s while the laser is on; the
  board (emulator process) must switch it off at its max-on time, and after SIGCONT the host
  must notice (output watchdog) and recover.
- ``broken_inputs``: the corpus in tests/broken_inputs.py; each refused at start naming the file
  and field, nothing left running, no output on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.recording import convert_log, read_log
from realtime_pose.sources.synthetic_scene import SyntheticScene
from realtime_pose.stream import PoseSubscriber
from realtime_pose.util.paths import DEMO_BUNDLE

REPO = Path(__file__).resolve().parents[1]
Row = dict


def _config(tmp: Path, **changes) -> dict:
    config = {
        "source": {"kind": "synthetic", "width": 320, "height": 240, "fps": 100},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 2},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "recording": {"enabled": False, "directory": str(tmp / "rec")},
        "status_interval_s": 0.5,
    }
    config.update(changes)
    return config


def _always_rule(output: str, action: str = "pulse", refractory_s: float = 0.05) -> dict:
    """A rule that fires every ``refractory_s`` (a likelihood gate that always holds)."""
    act = {"output": output, "action": action}
    if action == "pulse":
        act["duration_ms"] = 2
    return {
        "name": "always",
        "on": "while" if action == "pulse" else "enter",
        "condition": {"type": "likelihood", "keypoint": "snout", "at_least": 0.0},
        "refractory_s": refractory_s,
        "actions": [act],
    }


class Running:
    """A session running on a thread, with its status messages collected."""

    def __init__(self, config: dict) -> None:
        self.session = LiveSession(parse_config(config, "faults"))
        self.statuses: list[dict] = []
        self.thread = threading.Thread(
            target=self.session.run, kwargs={"on_status": self.statuses.append}, daemon=True
        )
        self.thread.start()

    def frames(self) -> int:
        return self.session.pipeline.frames

    def total_ms(self, since: int) -> np.ndarray:
        """capture → publish of the frames since sample count ``since`` (ms)."""
        samples = self.session.pipeline.stats.samples_since(since)["total"]
        return samples / 1e6

    def stop(self) -> None:
        self.session.stop_event.set()
        self.thread.join(10)
        self.session.close()


def _window(run: Running, seconds: float) -> dict:
    """The loop's frame rate and capture→publish latency over the next ``seconds``."""
    mark, frames0 = run.session.pipeline.stats.count, run.frames()
    time.sleep(seconds)
    ms = run.total_ms(mark)
    return {
        "fps": round((run.frames() - frames0) / seconds, 1),
        "total_ms": summarize_ns(ms * 1e6, "ms") if len(ms) else None,
    }


# -- faults -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_video(path: Path, frames: int, fps: float = 30.0) -> Path:
    import cv2

    scene = SyntheticScene(320, 240, seed=3, fps=fps)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for i in range(frames):
        writer.write(scene.frame(i)[0])
    writer.release()
    return path


def camera_stream_restart(tmp: Path, args) -> Row:
    if shutil.which("ffmpeg") is None:
        return {"fault": "camera_stream_restart", "ok": None, "skipped": "needs ffmpeg"}
    video = _write_video(tmp / "camera.avi", 300)
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"

    def serve() -> subprocess.Popen:
        """A camera server: ffmpeg serves one client per run, so it is run again after each
        (the session probes the camera once, then its grabber connects)."""
        ffmpeg = f"ffmpeg -loglevel quiet -re -stream_loop -1 -i {video} -c:v mpeg2video "
        ffmpeg += f"-q:v 4 -f mpegts '{url}?listen=1'"
        return subprocess.Popen(
            ["sh", "-c", f"while :; do {ffmpeg}; done"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(server: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()

    server = serve()
    time.sleep(1.0)
    source = {"kind": "camera", "device": url, "open_timeout_s": 2.0, "read_timeout_s": 1.0}
    run = Running(_config(tmp, source=source, grab_timeout_s=1.5))
    try:
        before = _window(run, 3.0)
        frames_at_kill = run.frames()
        kill(server)
        t_kill = time.monotonic()
        time.sleep(3.0)
        frames_during = run.frames() - frames_at_kill
        server = serve()
        t_restart = time.monotonic()
        recovered = None
        while time.monotonic() - t_restart < 30:
            if run.frames() > frames_at_kill + frames_during + 5:
                recovered = time.monotonic() - t_restart
                break
            time.sleep(0.05)
        after = _window(run, 2.0)
        grab = run.session.grabber.stats()
    finally:
        run.stop()
        kill(server)
    outage_s = t_restart - t_kill
    return {
        "fault": "camera_stream_restart",
        "done": f"ffmpeg MPEG-TS camera on {url} killed for {outage_s:.1f} s, then restarted",
        "loop": f"{before['fps']} FPS before, {frames_during} frames during the outage, "
        f"{after['fps']} FPS after; grabber errors {grab['errors']}, reopens {grab['reopens']}",
        "frames_lost": round(outage_s * 30),  # the camera's frames while it was down
        "recovery_s": None if recovered is None else round(recovered, 2),
        "on_disk": "n/a",
        "ok": recovered is not None and after["fps"] > 0 and grab["reopens"] >= 1,
        "details": {"before": before, "after": after, "grabber": grab},
    }


def video_truncated(tmp: Path, args) -> Row:
    video = _write_video(tmp / "full.avi", 200)
    data = video.read_bytes()
    cut = tmp / "truncated.avi"
    cut.write_bytes(data[: len(data) // 2])
    source = {"kind": "video", "path": str(cut), "realtime": False}
    run = Running(_config(tmp, source=source))
    run.thread.join(60)
    frames = run.frames()
    grab = run.session.grabber.stats()
    truncated = run.session.source.truncated
    run.stop()
    return {
        "fault": "video_truncated",
        "done": f"a 200-frame MJPG file cut to {len(data) // 2} of {len(data)} bytes",
        "loop": f"read {frames} frames, then ended cleanly (state {grab['state']}); "
        f"reported as truncated: {truncated}",
        "frames_lost": 200 - frames,
        "recovery_s": None,
        "on_disk": "n/a",
        "ok": 0 < frames < 200 and grab["state"] == "ended" and truncated,
    }


def serial_unplugged(tmp: Path, args) -> Row:
    from realtime_pose.hardware.testing.emulator import EmulatorThread

    link = tmp / "rig-laser"
    board = EmulatorThread(link=link)
    outputs = {
        "laser": {
            "kind": "serial",
            "port": str(link),
            "channel": 0,
            "max_on_ms": 50,
            "reconnect_max_s": 0.2,
        }
    }
    run = Running(_config(tmp, outputs=outputs, rules=[_always_rule("laser")]))
    try:
        before = _window(run, 2.0)
        device = run.session.dispatcher.target("laser")[0]
        health0 = device.health()
        board.stop()  # unplugged: the pty closes, its link goes
        t_unplug = time.monotonic()
        during = _window(run, 2.0)
        health_out = device.health()
        board = EmulatorThread(link=link)  # plugged back at the same port name
        t_plug = time.monotonic()
        recovered = None
        while time.monotonic() - t_plug < 10:
            if device.health().reconnects > health0.reconnects and board.emulator.records("rx"):
                recovered = time.monotonic() - t_plug
                break
            time.sleep(0.02)
        after = _window(run, 1.0)
        health1 = device.health()
    finally:
        run.stop()
        board.stop()
    failed = health_out.failed - health0.failed
    return {
        "fault": "serial_unplugged",
        "done": f"the board's pty closed for {t_plug - t_unplug:.1f} s, then a new board at "
        "the same port",
        "loop": f"{before['fps']} / {during['fps']} / {after['fps']} FPS before / unplugged / "
        f"after; capture->publish p99 {before['total_ms']['p99_ms']} / "
        f"{during['total_ms']['p99_ms']} / {after['total_ms']['p99_ms']} ms",
        "frames_lost": 0,
        "recovery_s": None if recovered is None else round(recovered, 3),
        "on_disk": f"{failed} actions while unplugged logged as failed",
        "ok": recovered is not None and failed > 0 and during["fps"] > 0.5 * before["fps"],
        "details": {
            "health_before": health0.to_dict(),
            "health_unplugged": health_out.to_dict(),
            "health_after": health1.to_dict(),
            "windows": {"before": before, "unplugged": during, "after": after},
        },
    }


SLOW_SUBSCRIBER = """
import json, sys, time, msgpack, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.SUB); s.rcvhwm = 10
s.setsockopt(zmq.SUBSCRIBE, b"pose"); s.connect(sys.argv[1]); mode = sys.argv[2]
end = time.monotonic() + float(sys.argv[3])
print("ready", flush=True)
seqs = []
while time.monotonic() < end:
    if mode == "never":
        time.sleep(0.1)
    elif s.poll(100):
        seqs.append(msgpack.unpackb(s.recv_multipart()[1])["seq"])
        time.sleep(0.1 if mode == "slow" else 0.0)
span = (seqs[-1] - seqs[0] + 1) if seqs else 0
print(json.dumps({"received": len(seqs), "span": span}), flush=True)
"""


def subscribers(tmp: Path, args) -> Row:
    """ZeroMQ's PUB socket drops, per subscriber and silently, what a slow subscriber's queue
    cannot hold: the publisher cannot count those drops (its sends never fail), so the slow
    subscriber counts them itself, from the gaps in ``seq``."""
    run = Running(_config(tmp))
    children = {}
    try:
        alone = _window(run, 4.0)
        address = run.session.publisher.bound_address
        for mode in ("never", "slow", "fast"):
            child = subprocess.Popen(
                [sys.executable, "-c", SLOW_SUBSCRIBER, address, mode, "6"],
                stdout=subprocess.PIPE,
                text=True,
            )
            child.stdout.readline()
            children[mode] = child
        time.sleep(1.0)
        with_them = _window(run, 4.0)
        children["fast"].kill()  # disconnect mid-stream
        after_kill = _window(run, 2.0)
        slow = json.loads(children["slow"].communicate(timeout=30)[0].strip().splitlines()[-1])
    finally:
        for child in children.values():
            child.kill()
            child.wait()
        run.stop()
    p50 = (alone["total_ms"]["p50_ms"], with_them["total_ms"]["p50_ms"])
    missed = slow["span"] - slow["received"]
    return {
        "fault": "subscribers",
        "done": "three subscribers in other processes: never reads, reads 10/s, killed mid-stream",
        "loop": f"{alone['fps']} / {with_them['fps']} / {after_kill['fps']} FPS alone / with them "
        f"/ after the kill; capture->publish p50 {p50[0]} -> {p50[1]} ms, p99 "
        f"{alone['total_ms']['p99_ms']} -> {with_them['total_ms']['p99_ms']} ms",
        "frames_lost": 0,
        "recovery_s": None,
        "on_disk": f"the slow subscriber received {slow['received']} poses and counted {missed} "
        "dropped for it (seq gaps); the loop published every pose",
        "ok": with_them["fps"] > 0.8 * alone["fps"] and after_kill["fps"] > 0.8 * alone["fps"],
        "details": {
            "alone": alone,
            "with_subscribers": with_them,
            "after_kill": after_kill,
            "slow_subscriber": slow,
        },
    }


def sigkill_recording(tmp: Path, args) -> Row:
    rng = random.Random(1)
    outcomes = []
    for k in range(args.kills):
        folder = tmp / f"kill{k}"
        folder.mkdir()
        config = _config(folder, recording={"enabled": True, "directory": str(folder / "rec")})
        config["stream"]["address"] = f"tcp://127.0.0.1:{_free_port()}"
        config["recording"]["fsync_interval_s"] = 5.0  # crash safety must not need fsync
        (folder / "rig.yaml").write_text(yaml.safe_dump(config))
        sub = PoseSubscriber(config["stream"]["address"], topics=["pose"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "realtime_pose", "run", str(folder / "rig.yaml"), "--quiet"],
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        seqs: list[int] = []
        first = sub.recv(timeout_ms=60_000)
        if first is not None:
            seqs.append(first[1]["seq"])
        deadline = time.monotonic() + rng.uniform(0.2, 3.0)
        while time.monotonic() < deadline:
            got = sub.recv(timeout_ms=50)
            if got is not None:
                seqs.append(got[1]["seq"])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        while (got := sub.recv(timeout_ms=200)) is not None:  # what was already on the wire
            seqs.append(got[1]["seq"])
        sub.close()
        (log_path,) = (folder / "rec").glob("*.poselog")
        try:
            rec = read_log(log_path)
            recorded = set(int(s) for s in rec.seq)
            published_not_recorded = sorted(set(seqs) - recorded)
            tables = convert_log(log_path, folder / "tables")
            outcomes.append(
                {
                    "readable": True,
                    "poses": len(rec.poses),
                    "published": len(seqs),
                    "published_not_recorded": published_not_recorded,
                    "torn_bytes": rec.torn_bytes,
                    "converted": len(tables) >= 2,
                }
            )
        except Exception as exc:
            outcomes.append({"readable": False, "error": f"{type(exc).__name__}: {exc}"})
    readable = sum(o["readable"] for o in outcomes)
    worst = max((len(o.get("published_not_recorded", [])) for o in outcomes), default=0)
    converted = sum(o.get("converted", False) for o in outcomes)
    return {
        "fault": "sigkill_recording",
        "done": f"realtime-pose run (recording, fsync every 5 s) SIGKILLed {args.kills} times "
        "0.2-3 s after its first pose",
        "loop": "killed",
        "frames_lost": worst,
        "recovery_s": None,
        "on_disk": f"{readable}/{len(outcomes)} logs readable, {converted} converted; at most "
        f"{worst} published pose(s) missing from a log",
        "ok": readable == len(outcomes) == converted and worst <= 1,
        "details": outcomes,
    }


def disk_full(tmp: Path, args) -> Row:
    mount = tmp / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0:
        return {"fault": "disk_full", "ok": None, "skipped": "needs root to mount a tmpfs"}
    try:
        outputs = {"laser": {"kind": "log", "channel": 0, "max_on_ms": 50}}
        config = _config(
            tmp,
            recording={"enabled": True, "directory": str(mount), "fsync_interval_s": 0.2},
            outputs=outputs,
            rules=[_always_rule("laser")],
        )
        run = Running(config)
        t0 = time.monotonic()
        failed_at = None
        while time.monotonic() - t0 < 60:
            status = run.statuses[-1] if run.statuses else {}
            if status.get("recording_error"):
                failed_at = time.monotonic() - t0
                break
            time.sleep(0.1)
        frames_at_fail = run.frames()
        after = _window(run, 2.0)
        submitted = run.session.dispatcher.health()["submitted"]
        time.sleep(0.5)
        still_firing = run.session.dispatcher.health()["submitted"] > submitted
        status = run.statuses[-1]
        run.stop()
        (log_path,) = mount.glob("*.poselog")
        rec = read_log(log_path)
        return {
            "fault": "disk_full",
            "done": "recording onto a 192 KiB tmpfs until it filled",
            "loop": f"recording stopped after {failed_at and round(failed_at, 1)} s with status "
            f"recording_error {status.get('recording_error')!r}; loop {after['fps']} FPS after, "
            f"outputs still firing: {still_firing}",
            "frames_lost": 0,
            "recovery_s": None,
            "on_disk": f"log readable with {len(rec.poses)} poses (seq 0..{int(rec.seq[-1])}), "
            f"{rec.torn_bytes} torn bytes; frames processed by then {frames_at_fail}",
            "ok": failed_at is not None
            and after["fps"] > 0
            and still_firing
            and len(rec.poses) > 0,
        }
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def host_stall_laser_on(tmp: Path, args) -> Row:
    from realtime_pose.hardware.testing.emulator import start_emulator_process

    link, board_log = tmp / "rig-laser", tmp / "board.jsonl"
    board = start_emulator_process(link, board_log, max_on_ms=5000, watchdog_ms=1000)
    outputs = {
        "laser": {"kind": "serial", "port": str(link), "channel": 0, "max_on_ms": 500},
    }
    config = _config(tmp, outputs=outputs, rules=[_always_rule("laser", "on")])
    config["stream"]["control_address"] = None
    (tmp / "rig.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime_pose", "run", str(tmp / "rig.yaml"), "--quiet"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        t0 = time.monotonic()
        on_edge = None
        while time.monotonic() - t0 < 60 and on_edge is None:
            edges = [r for r in board.records("edge") if r.get("on")]
            on_edge = edges[0] if edges else None
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGSTOP)
        t_stop_ns = time.monotonic_ns()
        time.sleep(2.0)
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        board.stop()
    edges = board.records("edge")
    offs = [e for e in edges if not e.get("on") and e["t_ns"] > on_edge["t_ns"]] if on_edge else []
    first_off = offs[0] if offs else None
    on_for_ms = None if not first_off else (first_off["t_ns"] - on_edge["t_ns"]) / 1e6
    noticed = "output watchdog: no kick" in stderr
    return {
        "fault": "host_stall_laser_on",
        "done": "laser on (host max-on 500 ms, sent to the board), then the session process "
        "SIGSTOPped for 2 s, SIGCONT, SIGTERM",
        "loop": "after SIGCONT the host "
        + ("logged the stall (output watchdog)" if noticed else "did not log the stall")
        + f"; exit {proc.returncode}",
        "frames_lost": None,
        "recovery_s": None,
        "on_disk": _stall_summary(on_edge, first_off, on_for_ms, t_stop_ns),
        "ok": bool(on_for_ms is not None and on_for_ms <= 500 + 20 and noticed),
        "details": {"edges": edges[:20]},
    }


def _stall_summary(on_edge, first_off, on_for_ms, t_stop_ns) -> str:
    if on_edge is None:
        return "the laser never went on"
    stopped_ms = (t_stop_ns - on_edge["t_ns"]) / 1e6
    cause = first_off and first_off.get("cause")
    return (
        f"the board switched the laser off {on_for_ms and round(on_for_ms, 1)} ms after it went "
        f"on ({cause}); the host was stopped {stopped_ms:.0f} ms after it went on"
    )


def broken_inputs(tmp: Path, args) -> Row:
    from realtime_pose.cli import main as cli_main
    from realtime_pose.hardware.testing.emulator import EmulatorThread
    from tests.broken_inputs import CASES, build

    results = []
    handler = _Capture()
    logging.getLogger().addHandler(handler)
    try:
        for i, case in enumerate(CASES):
            folder = tmp / f"case{i}"
            folder.mkdir()
            with EmulatorThread() as board:
                rig = build(case, folder, serial_port=board.path)
                handler.records.clear()
                code = cli_main(["run", str(rig), "--quiet", "--seconds", "3"])
                message = "\n".join(handler.records)
                on = [e for e in board.emulator.edges(0) if e.get("on")]
            results.append(
                {
                    "case": case.name,
                    "exit": code,
                    "names_file_and_field": all(n in message for n in case.names),
                    "output_went_on": bool(on),
                    "message": message.splitlines()[0][:200] if message else "",
                }
            )
    finally:
        logging.getLogger().removeHandler(handler)
    good = sum(
        r["exit"] == 2 and r["names_file_and_field"] and not r["output_went_on"] for r in results
    )
    return {
        "fault": "broken_inputs",
        "done": f"{len(results)} broken bundles and configs (tests/broken_inputs.py)",
        "loop": "never started",
        "frames_lost": None,
        "recovery_s": None,
        "on_disk": f"{good}/{len(results)} refused at start naming the file and field, "
        "with no output on",
        "ok": good == len(results),
        "details": results,
    }


class _Capture(logging.Handler):
    """A logging handler that keeps the ERROR lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


FAULTS: dict[str, Callable[[Path, argparse.Namespace], Row]] = {
    "camera_stream_restart": camera_stream_restart,
    "video_truncated": video_truncated,
    "serial_unplugged": serial_unplugged,
    "subscribers": subscribers,
    "sigkill_recording": sigkill_recording,
    "disk_full": disk_full,
    "host_stall_laser_on": host_stall_laser_on,
    "broken_inputs": broken_inputs,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(FAULTS))
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the recording fault")
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or list(FAULTS):
        tmp = Path(tempfile.mkdtemp(prefix=f"rp-fault-{name}-"))
        t0 = time.monotonic()
        try:
            row = FAULTS[name](tmp, args)
        except Exception as exc:  # a fault that breaks the harness is a result too
            row = {"fault": name, "ok": False, "harness_error": f"{type(exc).__name__}: {exc}"}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        row["seconds"] = round(time.monotonic() - t0, 1)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "details"}), flush=True)
    path = write_result("faults", {"rows": rows}, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0 if all(r.get("ok") is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

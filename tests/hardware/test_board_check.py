"""``python -m realtime_pose.hardware.testing.board_check``: the board conformance check, run
against the emulator, a silent port and a board that only half speaks the protocol."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from realtime_pose.hardware.testing.board_check import check_board, main
from realtime_pose.hardware.testing.emulator import EmulatorThread, start_emulator_process
from realtime_pose.hardware.testing.loopback import PtyFarEnd

ROOT = Path(__file__).resolve().parents[2]
ALL_CHECKS = {
    "version",
    "channel",
    "version_seq",
    "echo",
    "error CMD",
    "error CH",
    "error RANGE",
    "error ARG",
    "error LONG",
    "acks",
    "pulse",
    "max_on_time",
    "min_off_time",
    "duty_cycle",
    "watchdog",
}


def test_the_emulator_passes_every_check_and_is_left_as_it_was(emulator: EmulatorThread) -> None:
    report = check_board(emulator.path, channel=1, echoes=30, boot_wait_s=5.0, late_s=2.0)
    failed = [c for c in report.checks if not c.ok]
    assert not failed, failed
    assert {c.name for c in report.checks} == ALL_CHECKS
    assert report.banner == "V RPIO 1 4" and report.n_channels == 4
    assert report.echo_rtt_us is not None and report.echo_rtt_us["n"] == 30
    edges = emulator.emulator.edges(1)
    assert {e["cause"] for e in edges if not e["on"]} >= {"pulse_end", "max_on", "duty", "watchdog"}
    state = emulator.emulator.state
    assert state.watchdog_ms == 1000 and state.max_on_ns[1] == 1_000_000_000
    assert state.limits[1].min_off_ns == 0 and not state.limits[1].duty_limited
    assert not any(state.on) and not state.ack


def test_a_silent_port_fails_at_once_with_advice() -> None:
    with PtyFarEnd() as far:
        report = check_board(far.host_path, boot_wait_s=0.5)
        sent = [line for _, line in far.reader.wait_for(1)]
    assert not report.ok
    assert [c.name for c in report.checks] == ["version"]
    assert "no answer" in report.checks[0].detail and "flashed" in report.checks[0].detail
    assert "V" in sent  # it asked


def _half_board(far: PtyFarEnd, stop: threading.Event) -> None:
    """Answers V (without the seq) and E; ignores everything else, limits included."""
    done = 0
    while not stop.is_set():
        lines = far.reader.wait_for(done + 1, timeout_s=0.1)
        for _, line in lines[done:]:
            if line.startswith("V"):
                far.reader.write(b"V RPIO 1 8\n")
            elif line.startswith("E "):
                far.reader.write(line.encode() + b"\n")
        done = len(lines)


def test_a_board_that_half_speaks_the_protocol_fails_the_right_checks(capsys) -> None:
    stop = threading.Event()
    with PtyFarEnd() as far:
        responder = threading.Thread(target=_half_board, args=(far, stop), daemon=True)
        responder.start()
        try:
            code = main(
                [far.host_path, "--echoes", "10", "--boot-wait", "2", "--reply-timeout", "0.3"]
            )
        finally:
            stop.set()
            responder.join(2)
    out = capsys.readouterr().out
    assert code == 1
    status = {line.split()[1]: line.split()[0] for line in out.splitlines()[:-1]}
    assert status["version"] == "PASS" and status["echo"] == "PASS"
    checks = ("version_seq", "error", "acks", "pulse", "max_on_time", "min_off_time", "duty_cycle")
    for name in (*checks, "watchdog"):
        assert status[name] == "FAIL", (name, out)
    assert out.splitlines()[-1].endswith("FAILED")


def test_command_line_against_an_emulator_process(tmp_path: Path) -> None:
    link = tmp_path / "rig-check"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with start_emulator_process(link, tmp_path / "emu.jsonl", n_channels=2):
        args = [str(link), "--echoes", "20", "--late", "2", "--json", str(tmp_path / "report.json")]
        result = subprocess.run(
            [sys.executable, "-m", "realtime_pose.hardware.testing.board_check", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=env,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] and report["n_channels"] == 2


def test_command_line_names_a_missing_port(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime_pose.hardware.testing.board_check",
            str(tmp_path / "no-such-port"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "cannot open" in result.stderr and "no-such-port" in result.stderr


def test_an_existing_json_report_is_refused_before_the_check(tmp_path: Path, capsys) -> None:
    report = tmp_path / "report.json"
    report.write_text("kept")
    assert main([str(tmp_path / "no-such-port"), "--json", str(report)]) == 2
    assert "report.json exists; not replaced" in capsys.readouterr().err
    assert report.read_text() == "kept"

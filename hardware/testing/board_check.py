"""Check that a board speaks the realtime-pose serial protocol v1 correctly.

Run it once after flashing ``realtime_pose_io.ino`` (and whenever a rig behaves oddly)::

    python -m realtime_pose.hardware.testing.board_check /dev/ttyACM0 \
        [--channel 0] [--echoes 200] [--json out.json]

It talks to the board line by line, as ``docs/serial-protocol.md`` describes, and checks: the
version line, echo (with round-trip statistics), the error codes, acknowledgements, a pulse
seen through ``Q``, the board-side maximum on-time (``X <ch> MAX`` without any ``L``), the
minimum off-time (``X <ch> HELD MINOFF``), the duty-cycle limit (``X <ch> DUTY`` then ``X <ch>
HELD DUTY``) and the host-silence watchdog (``X * WDG``). The checked channel switches on for up
to a few hundred milliseconds: disconnect the laser or valve first. The board's settings are
restored (``M`` 1000 ms, no minimum off-time, no duty limit, ``W`` 1000 ms, acks off, all off) at
the end. The exit code is 0 when every check
passes, 1 when one fails, 2 when the port cannot be opened.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from realtime_pose.hardware import protocol
from realtime_pose.util.safe_write import OutputExistsError, check_free, write_text

#: Timing tolerances: generous, the host may be a loaded PC and the link a 1 ms USB frame.
EARLY_S = 0.05
LATE_S = 0.3


@dataclass
class CheckResult:
    """The outcome of one check: ``ok`` and a line a person can act on."""

    name: str
    ok: bool
    detail: str


@dataclass
class BoardReport:
    """Everything :func:`check_board` found."""

    port: str
    banner: str | None = None
    n_channels: int | None = None
    checks: list[CheckResult] = field(default_factory=list)
    echo_rtt_us: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for ``--json``)."""
        return {**asdict(self), "ok": self.ok}


class _Link:
    """Line I/O on a pyserial port, with ``time.monotonic_ns()`` stamps and a read-ahead list."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self.pending: list[tuple[int, str]] = []
        self._buf = b""

    def send(self, line: str) -> int:
        t_ns = time.monotonic_ns()
        self.port.write(line.encode("ascii") + b"\n")
        self.port.flush()
        return t_ns

    def _read_some(self, timeout_s: float) -> None:
        self.port.timeout = max(0.0, timeout_s)
        chunk = self.port.read(max(1, self.port.in_waiting))
        t_ns = time.monotonic_ns()
        if not chunk:
            return
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            text = raw.decode("ascii", "replace").strip()
            if text:
                self.pending.append((t_ns, text))

    def expect(self, predicate: Any, timeout_s: float) -> tuple[int, str] | None:
        """The first line (read-ahead included) matching ``predicate``; others stay pending."""
        deadline = time.monotonic() + timeout_s
        while True:
            for i, (t_ns, line) in enumerate(self.pending):
                if predicate(line):
                    del self.pending[i]
                    return t_ns, line
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._read_some(min(left, 0.05))

    def quiet(self, duration_s: float) -> list[str]:
        """Read for ``duration_s``; return (and forget) everything that arrived or was pending."""
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            self._read_some(min(left, 0.05))
        lines = [line for _, line in self.pending]
        self.pending.clear()
        return lines


def _find_banner(link: _Link, boot_wait_s: float) -> str | None:
    """Wait for the boot banner (boards that reset on open), asking with ``V`` meanwhile."""
    is_banner = lambda s: s.startswith(f"{protocol.REPLY_VERSION} ")  # noqa: E731
    found = link.expect(is_banner, min(0.3, boot_wait_s))
    deadline = time.monotonic() + boot_wait_s
    while found is None and time.monotonic() < deadline:
        link.send(protocol.CMD_VERSION)
        found = link.expect(is_banner, 0.5)
    return None if found is None else found[1]


def _echo_stats(link: _Link, n: int, timeout_s: float) -> tuple[dict[str, float] | None, int]:
    rtts: list[float] = []
    lost = 0
    for seq in range(1, n + 1):
        t0 = link.send(f"E {seq}")
        got = link.expect(lambda s, seq=seq: s == f"E {seq}", timeout_s)
        if got is None:
            lost += 1
            continue
        rtts.append((got[0] - t0) / 1e3)
    if not rtts:
        return None, lost
    rtts.sort()
    return {
        "p50": round(statistics.median(rtts), 1),
        "p99": round(rtts[min(len(rtts) - 1, round(0.99 * (len(rtts) - 1)))], 1),
        "max": round(rtts[-1], 1),
        "n": len(rtts),
    }, lost


def _record(report: BoardReport, name: str, ok: bool, detail: str) -> bool:
    """Add one check's outcome to ``report``; return whether it passed."""
    report.checks.append(CheckResult(name, ok, detail))
    return ok


def _check_version(
    link: _Link, report: BoardReport, boot_wait_s: float, baudrate: int
) -> int | None:
    """Check the version line; return the board's channel count, or ``None`` if it failed."""
    banner = _find_banner(link, boot_wait_s)
    fields = banner.split() if banner else []
    good = len(fields) >= 4 and fields[1] == protocol.BOARD_ID and fields[3].isdigit()
    if not _record(
        report,
        "version",
        good and fields[2] == str(protocol.PROTOCOL_VERSION),
        f"board says {banner!r}"
        if banner
        else f"no answer within {boot_wait_s} s: is realtime_pose_io.ino flashed, is this the "
        f"board's port, and (UART boards) is the baud rate {baudrate}?",
    ):
        return None
    report.banner = " ".join(fields[:4])
    report.n_channels = int(fields[3])
    return report.n_channels


def _check_channel(report: BoardReport, channel: int, n_channels: int) -> bool:
    """Check that ``channel`` exists on the board."""
    return _record(
        report,
        "channel",
        0 <= channel < n_channels,
        f"checking channel {channel} of 0..{n_channels - 1}",
    )


def _switch_all_off(link: _Link) -> None:
    """Switch every channel off and acknowledgements off, and drop whatever the board said."""
    link.send("Z")
    link.send("C 0")
    link.quiet(0.1)


def _check_version_seq(link: _Link, report: BoardReport, reply_timeout_s: float) -> None:
    """Check that ``V <seq>`` answers with the sequence number at the end."""
    link.send("V 17")
    got = link.expect(lambda s: s.startswith("V "), reply_timeout_s)
    _record(
        report,
        "version_seq",
        got is not None and got[1].split()[-1] == "17",
        f"'V 17' answered {got[1] if got else None!r} (want the seq 17 at the end)",
    )


def _check_echo(link: _Link, report: BoardReport, echoes: int, reply_timeout_s: float) -> None:
    """Check that every ``E`` is echoed; note the round-trip statistics in ``report``."""
    stats, lost = _echo_stats(link, echoes, reply_timeout_s)
    report.echo_rtt_us = stats
    _record(
        report,
        "echo",
        stats is not None and lost == 0,
        f"{echoes - lost}/{echoes} echoes answered; round trip (us) {stats}",
    )


def _check_error_codes(
    link: _Link, report: BoardReport, channel: int, n_channels: int, reply_timeout_s: float
) -> None:
    """Check the board's answer to each kind of bad line (``!ERR CMD``, ``CH``, ...)."""
    long_line = "x" * 60
    for line, want in (
        ("bogus", "!ERR CMD bogus"),
        (f"P {n_channels} 1", f"!ERR CH P {n_channels} 1"),
        (f"P {channel} 0", f"!ERR RANGE P {channel} 0"),
        (f"P {channel} 1.2345", f"!ERR ARG P {channel} 1.2345"),
        (long_line, "!ERR LONG " + long_line[:24]),
    ):
        link.send(line)
        got = link.expect(lambda s: s.startswith(protocol.REPLY_ERROR), reply_timeout_s)
        _record(
            report,
            f"error {want.split()[1]}",
            got is not None and got[1] == want,
            f"{line[:30]!r} answered {got[1] if got else None!r}, want {want!r}",
        )


def _check_acks(link: _Link, report: BoardReport, reply_timeout_s: float) -> None:
    """Check the acknowledgements of ``C 1`` and ``K 7``, then switch acknowledgements off."""
    link.send("C 1")
    got_c = link.expect(lambda s: s.startswith("A "), reply_timeout_s)
    link.send("K 7")
    got_k = link.expect(lambda s: s.startswith("A "), reply_timeout_s)
    link.send("C 0")
    link.expect(lambda s: s.startswith("A "), reply_timeout_s)
    _record(
        report,
        "acks",
        got_c is not None and got_c[1] == "A - C" and got_k is not None and got_k[1] == "A 7 K",
        f"'C 1' -> {got_c[1] if got_c else None!r}, 'K 7' -> {got_k[1] if got_k else None!r}",
    )


def _check_pulse(link: _Link, report: BoardReport, channel: int, reply_timeout_s: float) -> None:
    """Check, through ``Q``, that a 150 ms pulse is on while it runs and off after it."""
    link.send(f"M {channel} 1000")
    link.send(f"P {channel} 150")
    link.send(f"Q {channel} 1")
    on = link.expect(lambda s: s.startswith("S ") and s.endswith(" 1"), reply_timeout_s)
    link.quiet(0.3)
    link.send(f"Q {channel} 2")
    off = link.expect(lambda s: s.startswith("S ") and s.endswith(" 2"), reply_timeout_s)
    on_f = on[1].split() if on else []
    off_f = off[1].split() if off else []
    _record(
        report,
        "pulse",
        len(on_f) == 6
        and on_f[2] == "1"
        and 0 < int(on_f[3]) <= 150
        and len(off_f) == 6
        and off_f[2] == "0",
        f"during 'P {channel} 150': {on[1] if on else None!r}; "
        f"300 ms later: {off[1] if off else None!r}",
    )


def _check_max_on_time(
    link: _Link, report: BoardReport, channel: int, reply_timeout_s: float, late_s: float
) -> None:
    """Check that the board cuts a channel held on past ``M`` (200 ms) and reports it."""
    link.send(f"M {channel} 200")
    t_on = link.send(f"H {channel}")
    cut = link.expect(lambda s: s == f"X {channel} MAX", 0.2 + late_s + reply_timeout_s)
    dt = None if cut is None else (cut[0] - t_on) / 1e9
    _record(
        report,
        "max_on_time",
        dt is not None and 0.2 - EARLY_S <= dt <= 0.2 + late_s,
        f"'H {channel}' with 'M {channel} 200' and no 'L': "
        + (f"'X {channel} MAX' after {dt * 1e3:.0f} ms" if dt is not None else "no cut report"),
    )


def _check_min_off_time(link: _Link, report: BoardReport, channel: int, reply_timeout_s: float):
    """Check that ``R`` (300 ms) refuses a pulse right after the last one and allows one later."""
    link.send(f"P {channel} 20")
    deadline = time.monotonic() + reply_timeout_s
    while time.monotonic() < deadline:  # until the board says the pulse is over
        time.sleep(0.03)
        link.send(f"Q {channel} 30")
        got = link.expect(lambda s: s.startswith("S ") and s.endswith(" 30"), reply_timeout_s)
        if got is not None and got[1].split()[2] == "0":
            break
    link.send(f"R {channel} 300")  # counted from the last on-period's end
    link.send(f"P {channel} 20 31")
    held = link.expect(lambda s: s.startswith(f"X {channel} HELD"), reply_timeout_s)
    time.sleep(0.4)
    link.send(f"P {channel} 20 32")
    late = [s for s in link.quiet(0.1) if s.startswith(f"X {channel} HELD")]
    link.send(f"R {channel} 0")
    want = f"X {channel} HELD MINOFF 31"
    _record(
        report,
        "min_off_time",
        held is not None and held[1] == want and not late,
        f"with 'R {channel} 300', a pulse just after the last answered "
        f"{held[1] if held else None!r} (want {want!r}); 400 ms later: {late or 'accepted'}",
    )


def _check_duty_cycle(
    link: _Link, report: BoardReport, channel: int, reply_timeout_s: float, late_s: float
) -> None:
    """Check that ``D`` (100 ms of every 1000 ms) cuts an ``H`` at 100 ms and refuses the next."""
    link.send(f"D {channel} 100 1000")
    t_on = link.send(f"H {channel}")
    cut = link.expect(lambda s: s == f"X {channel} DUTY", 0.1 + late_s + reply_timeout_s)
    link.send(f"H {channel} 41")
    held = link.expect(lambda s: s.startswith(f"X {channel} HELD"), reply_timeout_s)
    link.send(f"D {channel} 1000 1000")
    dt = None if cut is None else (cut[0] - t_on) / 1e9
    want = f"X {channel} HELD DUTY 41"
    _record(
        report,
        "duty_cycle",
        dt is not None
        and 0.1 - EARLY_S <= dt <= 0.1 + late_s
        and held is not None
        and held[1] == want,
        f"'H {channel}' with 'D {channel} 100 1000': "
        + (f"'X {channel} DUTY' after {dt * 1e3:.0f} ms" if dt is not None else "no cut report")
        + f"; the next 'H' answered {held[1] if held else None!r} (want {want!r})",
    )


def _check_watchdog(
    link: _Link, report: BoardReport, channel: int, reply_timeout_s: float, late_s: float
) -> None:
    """Check that the board trips its watchdog after ``W`` (300 ms) of host silence."""
    link.send(f"M {channel} 2000")
    link.send("W 300")
    t_on = link.send(f"H {channel}")
    trip = link.expect(lambda s: s == "X * WDG", 0.3 + late_s + reply_timeout_s)
    dt = None if trip is None else (trip[0] - t_on) / 1e9
    _record(
        report,
        "watchdog",
        dt is not None and 0.3 - EARLY_S <= dt <= 0.3 + late_s,
        "'W 300', 'H' then silence: "
        + (f"'X * WDG' after {dt * 1e3:.0f} ms" if dt is not None else "no watchdog report"),
    )


def _restore_board(link: _Link, report: BoardReport, channel: int) -> None:
    """Put back the board's settings; a refused restore line fails the ``clean_up`` check."""
    link.send("W 1000")
    link.send(f"M {channel} 1000")
    link.send(f"R {channel} 0")
    link.send(f"D {channel} 1000 1000")
    link.send("C 0")
    link.send("Z")
    stray = [s for s in link.quiet(0.1) if s.startswith(protocol.REPLY_ERROR)]
    if stray:
        _record(report, "clean_up", False, f"the board refused the restore lines: {stray}")


def check_board(
    port_url: str,
    channel: int = 0,
    echoes: int = 200,
    baudrate: int = 115_200,
    boot_wait_s: float = 3.0,
    reply_timeout_s: float = 1.0,
    late_s: float = LATE_S,
) -> BoardReport:
    """Run every check against the board on ``port_url``.

    Parameters
    ----------
    port_url
        Serial port path or pyserial URL.
    channel
        The channel to switch (it goes on for up to ~0.5 s).
    echoes
        Number of ``E`` round trips to time.
    baudrate
        For UART boards (ignored by USB CDC and ptys).
    boot_wait_s
        How long to wait for the board to answer at all (an Uno resets when the port opens).
    reply_timeout_s
        How long to wait for each expected reply once the board has answered.
    late_s
        How late a max on-time cut or a watchdog trip may be reported and still pass (host and
        link delays included).

    Raises
    ------
    OSError, serial.SerialException
        The port cannot be opened.
    """
    import serial

    report = BoardReport(port=port_url)
    port = serial.serial_for_url(port_url, baudrate=baudrate, timeout=0.05, write_timeout=1.0)
    link = _Link(port)
    try:
        n_channels = _check_version(link, report, boot_wait_s, baudrate)
        if n_channels is None:
            return report
        if not _check_channel(report, channel, n_channels):
            return report
        _switch_all_off(link)
        _check_version_seq(link, report, reply_timeout_s)
        _check_echo(link, report, echoes, reply_timeout_s)
        _check_error_codes(link, report, channel, n_channels, reply_timeout_s)
        _check_acks(link, report, reply_timeout_s)
        _check_pulse(link, report, channel, reply_timeout_s)
        _check_max_on_time(link, report, channel, reply_timeout_s, late_s)
        _check_min_off_time(link, report, channel, reply_timeout_s)
        _check_duty_cycle(link, report, channel, reply_timeout_s, late_s)
        _check_watchdog(link, report, channel, reply_timeout_s, late_s)
    finally:
        try:
            _restore_board(link, report, channel)
        finally:
            port.close()
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m realtime_pose.hardware.testing.board_check PORT``: print each check; exit 0
    if all pass."""
    parser = argparse.ArgumentParser(
        prog="python -m realtime_pose.hardware.testing.board_check",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("port", help="serial port or pyserial URL, e.g. /dev/ttyACM0")
    parser.add_argument("--channel", type=int, default=0, help="channel to switch (default 0)")
    parser.add_argument("--echoes", type=int, default=200, help="echo round trips to time")
    parser.add_argument("--baudrate", type=int, default=115_200)
    parser.add_argument("--boot-wait", type=float, default=3.0, help="seconds to wait for a reply")
    parser.add_argument(
        "--reply-timeout", type=float, default=1.0, help="seconds to wait for each expected reply"
    )
    parser.add_argument(
        "--late",
        type=float,
        default=LATE_S,
        help="seconds a max on-time cut or watchdog trip may be late and still pass",
    )
    parser.add_argument("--json", help="also write the report as JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    args = parser.parse_args(argv)
    if args.json:
        try:  # before the check, not after it: a refusal then loses nothing
            check_free(args.json, args.overwrite)
        except OutputExistsError as err:
            print(err, file=sys.stderr)
            return 2
    try:
        report = check_board(
            args.port,
            args.channel,
            args.echoes,
            args.baudrate,
            boot_wait_s=args.boot_wait,
            reply_timeout_s=args.reply_timeout,
            late_s=args.late,
        )
    except Exception as err:  # serial.SerialException, OSError: no such port, permissions
        print(
            f"cannot open {args.port!r}: {err}. Check the path (ls /dev/ttyACM* /dev/ttyUSB*) and "
            "that no other program holds the port (on Linux the user needs the 'dialout' group).",
            file=sys.stderr,
        )
        return 2
    for c in report.checks:
        print(f"{'PASS' if c.ok else 'FAIL'}  {c.name:<14} {c.detail}")
    print(f"{report.port}: {'all checks passed' if report.ok else 'FAILED'}")
    if args.json:
        write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n", args.overwrite)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The Arduino sketch, compiled for the PC with a stand-in Arduino core, against the reference.

``hardware/firmware/realtime_pose_io/realtime_pose_io.ino`` cannot be built for a board here, but
its logic is plain C++: ``firmware_harness/`` supplies ``micros()``, ``digitalWrite`` and a
``Serial`` made of strings, and feeds it timed lines. Every reply line and every pin edge must be
what :class:`realtime_pose.hardware.protocol.BoardState` (the executable protocol) produces for
the same inputs, including across the 32-bit ``micros()`` wrap, and with the minimum off-time
and duty-cycle limits (``R``, ``D``) that the host runs from the same reference
(:mod:`realtime_pose.hardware.limits`).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from realtime_pose.hardware.protocol import BoardState

HERE = Path(__file__).resolve().parent
HARNESS_DIR = HERE / "firmware_harness"
SKETCH = HERE.parents[1] / "hardware" / "firmware" / "realtime_pose_io" / "realtime_pose_io.ino"
# The sketch's default rig configuration: OUTPUT_PINS = {2..9}, watchdog and max on-time 1000 ms.
PINS = list(range(2, 10))

Step = tuple[int, str | None]  # (t_us, line or None for "only let time pass")


@pytest.fixture(scope="module", params=["arduino", "teensy"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sketch built for the PC, once as for an Arduino and once with its Teensy branches."""
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler (g++/clang++) to build the sketch for the PC")
    exe = tmp_path_factory.mktemp("sketch") / "rpio_harness"
    flags = [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
        "-x",
        "c++",
        "-I",
        str(HARNESS_DIR),
    ]
    if request.param == "teensy":
        flags.append("-DTEENSYDUINO=159")
    result = subprocess.run(
        [compiler, *flags, str(HARNESS_DIR / "harness.cpp"), "-o", str(exe)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"the sketch does not compile:\n{result.stderr}"
    return exe


def run_sketch(exe: Path, steps: list[Step], t0_us: int = 0) -> list[tuple[list, list]]:
    """Per step: (reply lines, pin edges as (channel, level)); element 0 is the boot output."""
    text = "".join(f"{t}\n" if line is None else f"{t} {line}\n" for t, line in steps)
    out = subprocess.run(
        [str(exe), str(t0_us)], input=text, capture_output=True, text=True, timeout=60
    ).stdout
    results: list[tuple[list, list]] = [([], [])]  # the boot output, then one per step
    for row in out.splitlines():
        if row == ".":
            results.append(([], []))
        elif row.startswith("O "):
            results[-1][0].append(row.split(" ", 2)[2])
        elif row.startswith("D "):
            _, _, pin, level = row.split()
            results[-1][1].append((PINS.index(int(pin)), bool(int(level))))
    return results[:-1]


def _framed(line: str) -> str:
    """A line as the emulator hands it to BoardState: unprintables as '?', stripped."""
    return "".join(c if 32 <= ord(c) < 127 or c in "\t\r" else "?" for c in line).strip()


def run_reference(steps: list[Step], t0_us: int = 0) -> list[tuple[list, list]]:
    """The same steps through BoardState as the emulator runs it: due timers, the line, timers.

    Blank lines only feed the watchdog; other lines are stripped first (as the emulator does).
    """
    board = BoardState(n_channels=len(PINS))
    board.feed(t0_us * 1000)
    levels = [False] * len(PINS)
    results: list[tuple[list, list]] = [([board.banner()], [])]

    def physical(edges: list, into: list) -> None:
        for edge in edges:
            if levels[edge.channel] != edge.state:
                levels[edge.channel] = edge.state
                into.append((edge.channel, edge.state))

    for t_us, line in steps:
        now_ns = t_us * 1000
        replies: list[str] = []
        edges: list = []
        if line is not None:
            if line.startswith("~"):
                line = "x" * int(line[1:])
            r, e = board.tick(now_ns)  # time passes continuously up to the bytes' arrival
            replies += r
            physical(e, edges)
            board.feed(now_ns)
            if _framed(line):
                r, e = board.handle_line(_framed(line), now_ns)
                replies += r
                physical(e, edges)
        r, e = board.tick(now_ns)
        replies += r
        physical(e, edges)
        results.append((replies, edges))
    return results


def assert_same(exe: Path, steps: list[Step], t0_us: int = 0) -> None:
    got = run_sketch(exe, steps, t0_us)
    want = run_reference(steps, t0_us)
    assert len(got) == len(want), "the harness lost steps"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        what = "boot" if i == 0 else f"step {i - 1} {steps[i - 1]!r}"
        assert g == w, f"sketch and protocol.BoardState differ at {what}: sketch {g}, reference {w}"


def test_sketch_matches_reference_on_a_hand_written_session(harness: Path) -> None:
    steps: list[Step] = [
        (1_000, "V 5"),
        (2_000, "C 1"),
        (3_000, "P 0 5 7"),  # pulse: on, ack
        (7_999, None),
        (8_000, None),  # pulse ends exactly at 5 ms
        (10_000, "H 1"),
        (20_000, "Q 1 3"),
        (30_000, "Z 9"),
        (40_000, "E 42"),
        (50_000, "bogus"),
        (60_000, "P 9 1"),  # no channel 9
        (70_000, "~60"),  # too long
        (80_000, "M 2 0.5"),
        (81_000, "P 2 3"),  # capped at 0.5 ms -> X 2 MAX
        (82_000, None),
        (90_000, "p 3 2.25"),  # lower case and decimals
        (95_000, "Q 3"),
        (100_000, "P 0 0"),  # zero: RANGE
        (100_001, "P 0 3600000.001"),  # RANGE
        (100_002, "P 0 1.2345"),  # 4 decimals: ARG
        (100_002, "P 0 4294968"),  # RANGE (x1000 would wrap a uint32 to 704 us)
        (100_002, "M 0 9999999"),  # RANGE
        (100_002, "P 0 12345678"),  # 8 digits: ARG
        (100_002, "P 99999999999999999999 1"),  # CH, no overflow into a valid channel
        (100_002, "E 99999999999"),  # 11 digits: ARG
        (100_003, "W 60001"),  # RANGE
        (100_004, "C 2"),  # RANGE
        (100_005, "E"),  # ARG
        (100_006, "H 1 2 3"),  # ARG
        (100_007, ""),  # blank: ignored, only feeds the watchdog
        (100_007, "  \t "),  # blank too
        (100_007, "  Q 0 \t"),  # surrounding spaces are stripped
        (100_007, " zz\x01 "),  # unknown command, unprintable byte echoed as '?'
        (100_007, "P 0  \r5"),  # CR inside is whitespace
        (100_008, "P 0 5 1 2 3"),  # six fields: ARG
        (100_008, "bogus 1 2 3 4 5"),  # unknown command wins over the field count: CMD
        (100_008, "PP 0 5"),  # CMD
        (100_008, "P 007 5"),  # leading zeros: channel 7
        (100_008, "P 0 5."),  # ARG
        (100_008, "P 0 .5"),  # ARG
        (100_008, "P 0 5.1.2"),  # ARG
        (100_008, "E 999999999"),
        (100_008, "E 1000000000"),  # RANGE
        (100_008, "W 0 12"),  # watchdog off, with a seq
        (100_008, "W 1000"),
        (100_008, "H 4\r"),  # CR before LF is whitespace
        (100_009, "K"),
        (1_200_000, None),  # 4 was cut at max on-time (1000 ms) before the watchdog
        (1_300_000, "H 5"),
        (2_400_000, None),  # max on-time and watchdog both due: X 5 MAX, the watchdog is silent
        (2_500_000, "W 200"),
        (2_500_001, "H 6"),
        (2_800_000, None),  # silence 300 ms > 200 ms: X * WDG
        (2_900_000, "L 6"),
    ]
    assert_same(harness, steps)


def test_sketch_matches_reference_across_the_micros_wrap(harness: Path) -> None:
    t0 = (1 << 32) - 2_000  # micros() wraps 2 ms after boot
    steps: list[Step] = [
        (t0 + 500, "P 0 5"),  # ends 3 ms after the wrap
        (t0 + 2_500, None),
        (t0 + 5_499, None),
        (t0 + 5_500, None),
        (t0 + 6_000, "H 1"),
        (t0 + 6_000 + 1_000_000, None),  # max on-time, after the wrap
        (t0 + 7_000 + 1_000_000, "Q 1"),
    ]
    assert_same(harness, steps, t0_us=t0)


def _random_line(rng: random.Random) -> str:
    ch = str(rng.choice([0, 1, 2, 7, 8, 12]))
    ms = rng.choice(["1", "2.5", "0.25", "40", "900", "1500", "0", "1.0005", "x"])
    seq = rng.choice(["", "", " 17", " 999999999", " 1000000000", " -1"])
    op = rng.choice("PPPHHLLZQQEMWKCVY")
    body = {
        "P": f"P {ch} {ms}",
        "H": f"H {ch}",
        "L": f"L {ch}",
        "Z": "Z",
        "Q": f"Q {ch}",
        "E": f"E {rng.randrange(0, 2_000_000_000)}",
        "M": f"M {ch} {ms}",
        "W": f"W {rng.choice(['0', '50', '300', '60001'])}",
        "K": "K",
        "C": f"C {rng.choice('012')}",
        "V": "V",
        "Y": "Y 1",
    }[op]
    if op == "E":
        return body
    line = body + seq
    if rng.random() < 0.1:
        line = line.replace(" ", rng.choice(["  ", "\t", " "]))
    if rng.random() < 0.05:
        line = line.lower()
    if rng.random() < 0.05:
        line = rng.choice(["", " ", "\t"]) + line + rng.choice(["", " ", "\r", " \r"])
    if rng.random() < 0.03:
        line = rng.choice(["", "   ", "\x07"])
    return line


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sketch_matches_reference_on_random_sessions(harness: Path, seed: int) -> None:
    rng = random.Random(seed)
    t0 = rng.choice([0, (1 << 32) - 3_000_000])
    t = t0
    steps: list[Step] = []
    for _ in range(400):
        t += rng.choice([0, 1, 500, 3_000, 40_000, 250_000, 700_000])
        steps.append((t, None if rng.random() < 0.25 else _random_line(rng)))
    assert_same(harness, steps, t0_us=t0)


def test_sketch_matches_reference_on_min_off_and_duty_limits(harness: Path) -> None:
    steps: list[Step] = [
        (1_000, "W 0"),
        (2_000, "C 1"),
        (3_000, "R 0 50 1"),
        (4_000, "P 0 10"),
        (14_000, None),  # pulse ends
        (20_000, "P 0 10 2"),  # 6 ms after: X 0 HELD MINOFF 2
        (63_999, "H 0"),  # 1 us short
        (64_000, "H 0 3"),  # exactly 50 ms: on
        (70_000, "L 0"),
        (80_000, "R 0 0"),  # no minimum off-time any more
        (80_001, "P 0 1"),
        (90_000, "D 1 30 100 4"),  # 30 ms in any 100 ms: slots of 12.5 ms from 90 ms
        (91_000, "H 1"),
        (121_000, None),  # X 1 DUTY at 30 ms
        (125_000, "P 1 5 5"),  # X 1 HELD DUTY 5
        (202_499, "P 1 5"),  # still held: the first slot counts until 90 + 9 x 12.5 ms
        (202_500, "P 1 50"),  # it left (11.5 ms of on-time): on, cut at 214 ms
        (213_999, None),
        (214_000, None),
        (240_000, "D 1 30 100"),  # the same values: nothing changes
        (250_000, "Q 1 6"),
        (300_000, "H 2"),
        (350_000, "D 2 20 100"),  # set while on: counted from now, cut at 370 ms
        (369_999, None),
        (370_000, None),
        (400_000, "D 2 100 100"),  # on-time == window: no limit
        (400_001, "H 2"),
        (900_000, "D 3 1 3600000"),  # 1 ms in an hour: the longest window
        (900_001, "D 3 3600000 3600000.001"),  # RANGE
        (900_002, "R 3 3600000.001"),  # RANGE
        (900_003, "D 3 5 4"),  # RANGE: more on than the window
        (900_004, "D 3 0 4"),  # RANGE
        (900_005, "D 3 5"),  # ARG
        (900_006, "D 3 5 10 1 2"),  # ARG: six fields
        (900_007, "D 3 5 10 999999999"),
        (900_008, "R 3"),  # ARG
        (900_009, "R 3 0.0"),
        (1_500_000, None),
    ]
    assert_same(harness, steps)


def test_sketch_matches_reference_on_limits_across_the_micros_wrap(harness: Path) -> None:
    t0 = (1 << 32) - 150_000  # micros() wraps 150 ms after boot
    steps: list[Step] = [(t0 + 1, "W 0"), (t0 + 2, "R 0 20"), (t0 + 3, "D 0 30 100")]
    t = t0 + 10
    for i in range(60):  # a host asking for 25 ms every 7 ms, across the wrap
        t += 7_000
        steps.append((t, "P 0 25" if i % 3 else "H 0"))
    steps.append((t + 200_000, None))
    assert_same(harness, steps, t0_us=t0)


def _random_limits_line(rng: random.Random) -> str:
    ch = str(rng.choice([0, 1, 8]))
    ms = lambda: rng.choice(["1", "2.5", "0.25", "7.777", "40", "90", "300", "0", "x"])  # noqa: E731
    op = rng.choice("PPPPHHHLLZQRRDDDM")
    body = {
        "P": f"P {ch} {ms()}",
        "H": f"H {ch}",
        "L": f"L {ch}",
        "Z": "Z",
        "Q": f"Q {ch}",
        "R": f"R {ch} {ms()}",
        "D": f"D {ch} {ms()} {ms()}",
        "M": f"M {ch} {ms()}",
    }[op]
    return body + rng.choice(["", "", " 5"])


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_sketch_matches_reference_on_random_sessions_with_limits(harness: Path, seed: int) -> None:
    rng = random.Random(seed)
    t0 = rng.choice([0, (1 << 32) - 3_000_000])
    t = t0
    steps: list[Step] = [(t0 + 1, "W 0")]
    for _ in range(400):
        t += rng.choice([0, 1, 100, 700, 3_000, 9_000, 40_000, 125_000])
        steps.append((t, None if rng.random() < 0.25 else _random_limits_line(rng)))
    replies = [line for r, _ in run_reference(steps, t0) for line in r]
    assert any(" HELD " in line for line in replies) and any("DUTY" in line for line in replies)
    assert_same(harness, steps, t0_us=t0)

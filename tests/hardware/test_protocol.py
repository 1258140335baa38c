"""The line protocol as pure functions: encoding, parsing and the board's state machine."""

from __future__ import annotations

import pytest

from realtime_pose.hardware import protocol as p

MS = 1_000_000


def test_encoders_produce_documented_lines():
    assert p.encode_pulse(3, 12.5, seq=7) == b"P 3 12.5 7\n"
    assert p.encode_pulse(0, 5.0) == b"P 0 5\n"
    assert p.encode_pulse(1, 0.0126) == b"P 1 0.013\n"  # µs resolution
    assert p.encode_set(2, True, seq=1) == b"H 2 1\n"
    assert p.encode_set(2, False) == b"L 2\n"
    assert p.encode_all_off(9) == b"Z 9\n"
    assert p.encode_echo(42) == b"E 42\n"
    assert p.encode_max_on(0, 50) == b"M 0 50\n"
    assert p.encode_watchdog(250) == b"W 250\n"
    assert p.encode_confirm(True) == b"C 1\n"
    assert p.encode_min_off(1, 0) == b"R 1 0\n"
    assert p.encode_min_off(1, 20.5, seq=3) == b"R 1 20.5 3\n"
    assert p.encode_duty(2, 300, 1000) == b"D 2 300 1000\n"


def test_parse_command_round_trips_encoders():
    cmd = p.parse_command(p.encode_pulse(3, 12.5, seq=7).decode().strip(), n_channels=4)
    assert (cmd.op, cmd.channel, cmd.time_us, cmd.seq) == ("P", 3, 12_500, 7)
    cmd = p.parse_command("w 200", n_channels=4)
    assert (cmd.op, cmd.value, cmd.seq) == ("W", 200, None)
    cmd = p.parse_command(p.encode_duty(1, 0.25, 1000, seq=9).decode().strip(), n_channels=4)
    assert (cmd.op, cmd.channel, cmd.time_us, cmd.time2_us, cmd.seq) == ("D", 1, 250, 10**6, 9)
    cmd = p.parse_command("R 3 0", n_channels=4)  # 0: no minimum off-time
    assert (cmd.op, cmd.channel, cmd.time_us, cmd.seq) == ("R", 3, 0, None)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("X 1", p.ERR_CMD),
        ("P 1", p.ERR_ARG),
        ("P one 5", p.ERR_ARG),
        ("P 9 5", p.ERR_CH),
        ("P 1 0", p.ERR_RANGE),
        ("P 1 5.1234", p.ERR_ARG),
        ("P 1 3600001", p.ERR_RANGE),
        ("W 60001", p.ERR_RANGE),
        ("C 2", p.ERR_RANGE),
        ("H 1 2 3", p.ERR_ARG),
        ("E", p.ERR_ARG),
        ("P 1 5 " + "1" * 60, p.ERR_LONG),
        ("R 1", p.ERR_ARG),
        ("R 1 3600001", p.ERR_RANGE),
        ("D 1 5", p.ERR_ARG),
        ("D 1 0 100", p.ERR_RANGE),
        ("D 1 5 0", p.ERR_RANGE),
        ("D 1 101 100", p.ERR_RANGE),  # more on-time than the window holds
        ("D 1 5 100 7 8", p.ERR_ARG),
        ("D 9 5 100", p.ERR_CH),
    ],
)
def test_parse_command_rejects_with_the_boards_error_code(line, code):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_command(line, n_channels=4)
    assert info.value.code == code
    assert info.value.reply().startswith(f"!ERR {code}")


def test_board_pulse_ends_after_its_duration():
    board = p.BoardState(n_channels=2, max_on_ms=1000, watchdog_ms=0)
    replies, edges = board.handle_line("P 1 20", 0)
    assert edges == [p.Edge(1, True, "P")] and replies == []
    assert board.tick(19 * MS) == ([], [])
    assert board.tick(20 * MS) == ([], [p.Edge(1, False, p.CAUSE_PULSE_END)])


def test_board_caps_pulses_and_highs_at_max_on_time():
    board = p.BoardState(n_channels=2, max_on_ms=1000, watchdog_ms=0)
    board.handle_line("M 0 50", 0)
    board.handle_line("P 0 500", 0)
    assert board.next_deadline_ns() == 50 * MS
    replies, edges = board.tick(50 * MS)
    assert edges == [p.Edge(0, False, p.CAUSE_MAX_ON)] and replies == ["X 0 MAX"]
    board.handle_line("H 0", 100 * MS)
    _, edges = board.tick(150 * MS)
    assert edges == [p.Edge(0, False, p.CAUSE_MAX_ON)]


def test_board_watchdog_switches_everything_off_after_host_silence():
    board = p.BoardState(n_channels=3, max_on_ms=10_000, watchdog_ms=100)
    board.feed(0)
    board.handle_line("H 0", 0)
    board.handle_line("H 2", 0)
    assert board.tick(99 * MS) == ([], [])
    replies, edges = board.tick(100 * MS)
    assert {(e.channel, e.state, e.cause) for e in edges} == {
        (0, False, p.CAUSE_WATCHDOG),
        (2, False, p.CAUSE_WATCHDOG),
    }
    assert replies == ["X * WDG"]
    assert board.tick(500 * MS) == ([], [])  # trips once per silence


def test_board_acknowledges_with_sequence_numbers_when_asked():
    board = p.BoardState(n_channels=2)
    assert board.handle_line("C 1", 0)[0] == ["A - C"]
    assert board.handle_line("H 1 17", 0)[0] == ["A 17 H"]
    assert board.handle_line("E 5", 0)[0] == ["E 5"]
    assert board.handle_line("Q 1 8", 1 * MS)[0] == ["S 1 1 999 1000 8"]
    assert p.parse_reply("A 17 H").seq == 17
    assert p.parse_reply("S 1 1 999 1000 8").seq == 8


def test_resending_on_cannot_extend_an_output_past_its_max_on_time():
    """A host stuck re-sending H (or P) every 10 ms: the board still cuts at the limit, counted
    from the off->on edge."""
    from realtime_pose.hardware.protocol import BoardState

    ms = 1_000_000
    board = BoardState(n_channels=1, max_on_ms=50, watchdog_ms=0)
    board.handle_line("H 0", 0)
    off_at = None
    for t in range(10 * ms, 200 * ms, 10 * ms):
        _, edges = board.tick(t)
        if any(not e.state for e in edges):
            off_at = t
            break
        board.handle_line("H 0" if t % (20 * ms) else "P 0 500", t)
    assert off_at is not None and off_at <= 50 * ms
    assert board.off_cause[0] == "max_on"
    # after going off, a new H starts a new on-period with a fresh limit
    board.handle_line("H 0", 300 * ms)
    assert board.on[0] and board.off_at_ns[0] == 350 * ms
    # lowering M while on applies the new limit from the edge (already past it: off at once)
    board.handle_line("M 0 20", 330 * ms)
    _, edges = board.tick(330 * ms)
    assert edges and not edges[0].state


def test_board_holds_off_a_switch_on_within_its_minimum_off_time():
    board = p.BoardState(n_channels=2, watchdog_ms=0)
    board.handle_line("R 0 50", 0)
    board.handle_line("P 0 10", 0)
    assert board.tick(10 * MS)[1] == [p.Edge(0, False, p.CAUSE_PULSE_END)]
    assert board.handle_line("H 0 7", 59 * MS) == (["X 0 HELD MINOFF 7"], [])
    assert board.handle_line("P 0 5", 40 * MS) == (["X 0 HELD MINOFF"], [])
    assert board.handle_line("H 1", 40 * MS)[1] == [p.Edge(1, True, "H")]  # per channel
    assert board.handle_line("H 0", 60 * MS)[1] == [p.Edge(0, True, "H")]


def test_board_cuts_at_the_duty_budget_and_refuses_until_it_comes_back():
    board = p.BoardState(n_channels=1, max_on_ms=1000, watchdog_ms=0)
    board.handle_line("C 1", 0)
    assert board.handle_line("D 0 30 100 4", 0)[0] == ["A 4 D"]
    board.handle_line("H 0", 0)
    assert board.next_deadline_ns() == 30 * MS
    assert board.tick(30 * MS) == (["X 0 DUTY"], [p.Edge(0, False, p.CAUSE_DUTY)])
    assert board.handle_line("P 0 5 6", 40 * MS)[0] == ["X 0 HELD DUTY 6", "A 6 P"]
    # slots of 12.5 ms: the first one's on-time leaves the 9-slot count at 112.5 ms
    assert board.handle_line("P 0 50", 112_500_000)[1] == [p.Edge(0, True, "P")]
    assert board.next_deadline_ns() == 125 * MS and board.off_cause[0] == p.CAUSE_DUTY


def test_duty_set_while_on_restarts_the_count_and_may_cut_sooner():
    board = p.BoardState(n_channels=1, max_on_ms=1000, watchdog_ms=0)
    board.handle_line("H 0", 0)
    board.handle_line("D 0 20 100", 500 * MS)
    assert board.next_deadline_ns() == 520 * MS and board.off_cause[0] == p.CAUSE_DUTY
    board.handle_line("D 0 20 100", 510 * MS)  # the same values again change nothing
    assert board.next_deadline_ns() == 520 * MS

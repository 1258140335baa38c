"""The minimum off-time and duty-cycle limit as pure logic: hand-computed cases, the board's
reference (BoardState) running them, and the guarantee checked over random sessions."""

from __future__ import annotations

import itertools
import random

import pytest

from realtime_pose.hardware import protocol as p
from realtime_pose.hardware.limits import (
    DUTY_SLOTS,
    HOLD_DUTY,
    HOLD_MIN_OFF,
    ChannelLimits,
    slot_ns_for,
)

MS = 1_000_000
US = 1_000


def test_min_off_holds_a_switch_on_until_it_has_passed():
    lim = ChannelLimits()
    lim.set_min_off(50 * MS)
    assert lim.switch_on(0) is None  # never off before: nothing to wait for
    lim.switch_off(10 * MS)
    assert lim.hold_cause(60 * MS - 1) == HOLD_MIN_OFF
    assert lim.switch_on(60 * MS - 1) == HOLD_MIN_OFF and not lim.on
    assert lim.min_off_left_ns(40 * MS) == 20 * MS
    assert lim.switch_on(60 * MS) is None and lim.on


def test_duty_budget_cuts_an_on_period_and_comes_back_slot_by_slot():
    lim = ChannelLimits()
    lim.set_duty(300 * MS, 1000 * MS, 0)  # 300 ms in any 1 s, slots of 125 ms
    assert lim.slot_ns == 125 * MS
    assert lim.switch_on(0) is None
    assert lim.duty_end_ns() == 300 * MS  # on from 0, the whole budget
    lim.switch_off(300 * MS)
    assert lim.slots[:3] == [125 * MS, 125 * MS, 50 * MS]
    assert lim.hold_cause(310 * MS) == HOLD_DUTY
    # the first slot (125 ms of on-time) leaves the last 9 slots at 9 x 125 = 1125 ms
    assert lim.hold_cause(1125 * MS - 1) == HOLD_DUTY
    assert lim.allowance_ns(1125 * MS) == 125 * MS  # until the second slot's on-time...
    # from 1250 ms only the third slot (50 ms) is left, and it leaves at 1375 ms: 300 ms again
    assert lim.allowance_ns(1250 * MS) == 300 * MS


def test_an_on_period_that_starts_mid_budget_is_cut_where_the_window_would_overflow():
    lim = ChannelLimits()
    lim.set_duty(100 * MS, 800 * MS, 0)  # slots of 100 ms, 9 of them counted
    lim.switch_on(50 * MS)
    lim.switch_off(110 * MS)  # 60 ms used (50 in slot 0, 10 in slot 1)
    assert lim.switch_on(700 * MS) is None
    # 40 ms left; at 900 ms slot 0 (50 ms) drops, but by then the budget is gone: cut at 740
    assert lim.duty_end_ns() == 740 * MS


def test_no_limits_hold_nothing_and_count_nothing():
    lim = ChannelLimits()
    for t in range(0, 100 * MS, MS):
        assert lim.switch_on(t) is None
        lim.switch_off(t + 1)
    assert lim.duty_end_ns() is None and lim.allowance_ns(0) is None
    assert lim.slots == [0] * (DUTY_SLOTS + 1)


def test_slots_are_whole_microseconds_and_cover_the_window():
    for window_us in (1, 7, 8, 1001, 7777, 3_600_000_000):
        slot = slot_ns_for(window_us * US)
        assert slot % US == 0 and slot * DUTY_SLOTS >= window_us * US
        assert slot - US < -(-window_us * US // DUTY_SLOTS)


def test_advancing_more_or_less_often_changes_no_decision():
    rng = random.Random(7)
    eager, lazy = ChannelLimits(), ChannelLimits()
    for lim in (eager, lazy):
        lim.set_duty(37 * MS, 200 * MS, 0)
        lim.set_min_off(3 * MS)
    t = 0
    for _ in range(3000):
        t += rng.choice([1, 100, 5_000, 400_000, 7 * MS, 90 * MS])
        for _ in range(rng.randrange(3)):
            eager.advance(t - rng.randrange(1 + t - max(eager.acct_ns, eager.slot_start_ns)))
        eager.advance(t)
        if eager.on:
            end = eager.duty_end_ns()
            if rng.random() < 0.5 or (end is not None and t >= end):
                eager.switch_off(t)
                lazy.switch_off(t)
        else:
            assert eager.switch_on(t) == lazy.switch_on(t)
            assert eager.duty_end_ns() == lazy.duty_end_ns()


def _simulate(rng: random.Random, on_us: int, window_us: int, min_off_us: int, max_on_us: int):
    """A host hammering one board channel with H, P and L; the board's timers run exactly at
    their deadlines. Returns the on-periods ``[(t_on_ns, t_off_ns)]`` and the replies."""
    board = p.BoardState(n_channels=1, watchdog_ms=0)
    for line in (f"M 0 {max_on_us / 1000}", f"R 0 {min_off_us / 1000}"):
        board.handle_line(line, 0)
    board.handle_line(f"D 0 {on_us / 1000} {window_us / 1000}", 0)
    edges: list[tuple[int, bool]] = []
    replies: list[str] = []

    def run(result: tuple[list[str], list[p.Edge]], t_ns: int) -> None:
        replies.extend(result[0])
        edges.extend((t_ns, e.state) for e in result[1])

    t = 0
    for _ in range(500):
        t += rng.choice([1, 50, 500, 2_000, 7_000, 20_000, 60_000]) * US
        while (due := board.next_deadline_ns()) is not None and due <= t:
            run(board.tick(due), due)
        run(board.tick(t), t)
        run(
            board.handle_line(rng.choice(["H 0", "H 0", "P 0 5", "P 0 30", "P 0 200", "L 0"]), t), t
        )
    run(board.handle_line("L 0", t + 1), t + 1)
    periods, t_on = [], None
    for t_ns, on in edges:
        if on and t_on is None:
            t_on = t_ns
        elif not on and t_on is not None:
            periods.append((t_on, t_ns))
            t_on = None
    return periods, replies


def max_on_in_any_window(periods: list[tuple[int, int]], window_ns: int) -> int:
    """The most on-time any window of ``window_ns`` holds (it is largest for a window that
    starts at an on-edge or ends at an off-edge)."""
    starts = [a for a, _ in periods] + [b - window_ns for _, b in periods]
    return max(
        (sum(max(0, min(b, s + window_ns) - max(a, s)) for a, b in periods) for s in starts),
        default=0,
    )


@pytest.mark.parametrize("seed", range(12))
def test_the_board_never_exceeds_the_duty_budget_in_any_window_nor_shortens_an_off(seed):
    rng = random.Random(seed)
    window_us = rng.choice([7_777, 100_000, 250_000, 1_000_000, 1_001_000])
    on_us = max(1, int(window_us * rng.choice([0.05, 0.3, 0.5, 0.9, 0.999])))
    min_off_us = rng.choice([0, 1_000, 20_000, 50_000])
    periods, replies = _simulate(
        rng, on_us, window_us, min_off_us, rng.choice([10, 100, 1000]) * MS // US
    )
    assert len(periods) > 20
    assert max_on_in_any_window(periods, window_us * US) <= on_us * US
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(periods)]
    assert min(gaps) >= min_off_us * US
    if on_us <= window_us // 2 or min_off_us >= 20_000:
        assert any(r.startswith("X 0 HELD") or r == "X 0 DUTY" for r in replies), "never acted"

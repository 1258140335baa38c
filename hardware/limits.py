"""The minimum off-time and duty-cycle limit of one output channel: the rules host and board share.

Pure integer arithmetic on nanoseconds, no clock and no I/O. The host
(:class:`~.base.OutputDevice`) and the board's executable reference
(:class:`~.protocol.BoardState`, hence the emulator) run this very code; the sketch
(``hardware/firmware/realtime_pose_io/realtime_pose_io.ino``) is its translation to ``uint32``
microseconds, and ``tests/hardware/test_firmware_sketch.py`` checks the two agree.

Minimum off-time
    Once an on-period ends, the channel may not go on again for ``min_off_ns``: a switch-on
    sooner is *held off* (refused: the channel stays off, nothing is deferred).

Duty cycle
    At most ``duty_on_ns`` of on-time in any window of ``duty_window_ns``. On-time is counted in
    slots of ``slot_ns = ceil(duty_window_ns / DUTY_SLOTS)`` (a whole number of µs), and a
    switch-on is held off, or an on-period cut when the budget runs out, so that the on-time in
    the last ``DUTY_SLOTS + 1`` slots (the current one included) never exceeds the budget. Every
    window of ``duty_window_ns`` lies within such a run of slots, so the limit holds over *any*
    window; the price is up to one slot of older history counted, so a steady pulse train is
    held to between ``DUTY_SLOTS / (DUTY_SLOTS + 1)`` of the budget and all of it. The memory is
    fixed (``DUTY_SLOTS + 1`` counters), which a microcontroller needs.

A channel is switched on with :meth:`ChannelLimits.switch_on` (which refuses with a cause) and
off with :meth:`ChannelLimits.switch_off`; the owner ends an on-period no later than
:meth:`ChannelLimits.duty_end_ns`.
"""

from __future__ import annotations

DUTY_SLOTS = 8
"""Slots per duty window (the sketch's ``DUTY_SLOTS``)."""
HOLD_MIN_OFF = "min_off"
"""Hold-off cause: the channel's minimum off-time has not passed since its last on-period."""
HOLD_DUTY = "duty"
"""Hold-off cause: the channel's duty-cycle budget is used up."""

_RING = DUTY_SLOTS + 1
_US = 1000


def slot_ns_for(window_ns: int) -> int:
    """The slot length for a duty window: ``ceil(window / DUTY_SLOTS)``, rounded up to whole µs."""
    return -(-window_ns // (DUTY_SLOTS * _US)) * _US


class ChannelLimits:
    """One channel's minimum off-time and duty-cycle accounting.

    Without limits (the default: ``min_off_ns`` 0, no duty budget) every switch-on is allowed
    and nothing is counted.
    """

    __slots__ = (
        "acct_ns",
        "duty_from_ns",
        "duty_len_ns",
        "duty_on_ns",
        "duty_window_ns",
        "head",
        "min_off_ns",
        "off_since_ns",
        "on",
        "slot_ns",
        "slot_start_ns",
        "slots",
    )

    def __init__(self) -> None:
        self.min_off_ns = 0
        self.duty_on_ns = 0
        self.duty_window_ns = 0
        self.slot_ns = 0
        self.slots = [0] * _RING
        self.head = 0
        self.slot_start_ns = 0
        self.acct_ns = 0
        self.on = False
        self.off_since_ns: int | None = None
        self.duty_from_ns = 0
        self.duty_len_ns: int | None = None

    @property
    def duty_limited(self) -> bool:
        """Whether a duty budget applies (``duty_on_ns < duty_window_ns``)."""
        return self.duty_on_ns < self.duty_window_ns

    # ------------------------------------------------------------------ configuration
    def set_min_off(self, min_off_ns: int) -> None:
        """Set the minimum off-time; it applies to the next switch-on."""
        self.min_off_ns = int(min_off_ns)

    def set_duty(self, on_ns: int, window_ns: int, now_ns: int) -> None:
        """Allow ``on_ns`` of on-time in any ``window_ns`` (``on_ns >= window_ns``: no limit).

        The same values again change nothing; new values restart the accounting at ``now_ns``
        (the slots change length). A channel that is on gets its allowance from now.
        """
        if on_ns == self.duty_on_ns and window_ns == self.duty_window_ns:
            return
        self.duty_on_ns, self.duty_window_ns = int(on_ns), int(window_ns)
        self.slot_ns = slot_ns_for(self.duty_window_ns)
        self.slots = [0] * _RING
        self.head = 0
        self.slot_start_ns = self.acct_ns = now_ns
        self.duty_from_ns = now_ns
        self.duty_len_ns = self._allowance(now_ns) if self.on and self.duty_limited else None

    # ------------------------------------------------------------------ decisions
    def hold_cause(self, now_ns: int) -> str | None:
        """Why a switch-on at ``now_ns`` would be held off (:data:`HOLD_MIN_OFF`,
        :data:`HOLD_DUTY`), or ``None``. Call it while the channel is off."""
        if self.off_since_ns is not None and now_ns - self.off_since_ns < self.min_off_ns:
            return HOLD_MIN_OFF
        if self.duty_limited:
            self.advance(now_ns)
            if self._allowance(now_ns) == 0:
                return HOLD_DUTY
        return None

    def switch_on(self, now_ns: int) -> str | None:
        """Switch the channel on at ``now_ns`` (an off→on edge), or refuse with the cause.

        On success the on-period's duty allowance is fixed (:meth:`duty_end_ns`).
        """
        if self.off_since_ns is not None and now_ns - self.off_since_ns < self.min_off_ns:
            return HOLD_MIN_OFF
        self.duty_len_ns = None
        if self.duty_limited:
            self.advance(now_ns)
            allowance = self._allowance(now_ns)
            if allowance == 0:
                return HOLD_DUTY
            self.duty_len_ns = allowance
        self.duty_from_ns = now_ns
        self.on = True
        self.acct_ns = now_ns
        return None

    def switch_off(self, now_ns: int) -> None:
        """The channel went off at ``now_ns`` (its on-time is counted up to then)."""
        if not self.on:
            return
        self.advance(now_ns)
        self.on = False
        self.off_since_ns = now_ns

    def duty_end_ns(self) -> int | None:
        """When the current on-period's duty budget runs out (``None``: no duty limit)."""
        if self.duty_len_ns is None:
            return None
        return self.duty_from_ns + self.duty_len_ns

    def min_off_left_ns(self, now_ns: int) -> int:
        """How long the minimum off-time still holds the channel off (0: not at all)."""
        if self.off_since_ns is None:
            return 0
        return max(0, self.off_since_ns + self.min_off_ns - now_ns)

    def allowance_ns(self, now_ns: int) -> int | None:
        """How long an on-period starting at ``now_ns`` could last before the duty budget runs
        out (``None``: no duty limit). Call it while the channel is off."""
        if not self.duty_limited:
            return None
        self.advance(now_ns)
        return self._allowance(now_ns)

    # ------------------------------------------------------------------ the slots
    def advance(self, now_ns: int) -> None:
        """Bring the slots up to ``now_ns``: on-time since the last call is added to the slots
        it fell in, and slots older than ``DUTY_SLOTS`` slots are dropped. Calling it more or
        less often changes nothing (the sketch calls it every loop; the reference, lazily)."""
        if not self.duty_limited:
            return
        size = self.slot_ns
        elapsed = now_ns - self.slot_start_ns
        if elapsed >= size:
            k = elapsed // size
            if self.on:
                self.slots[self.head] += size - (self.acct_ns - self.slot_start_ns)
            fill = size if self.on else 0
            for j in range(k - _RING + 1 if k > _RING else 1, k + 1):
                self.slots[(self.head + j % _RING) % _RING] = fill if j < k else 0
            self.head = (self.head + k % _RING) % _RING
            self.slot_start_ns += k * size
            self.acct_ns = self.slot_start_ns
        if self.on:
            self.slots[self.head] += now_ns - self.acct_ns
            self.acct_ns = now_ns

    def _allowance(self, now_ns: int) -> int:
        """On-time left from ``now_ns`` if the channel stays on (after :meth:`advance`).

        Walks the coming slot boundaries: the on-time grows by the time elapsed, and each
        boundary drops the oldest slot's on-time from the count.
        """
        used = sum(self.slots)
        if used >= self.duty_on_ns:
            return 0
        avail = self.duty_on_ns - used
        first = self.slot_ns - (now_ns - self.slot_start_ns)
        to_boundary = first
        elapsed = 0
        for j in range(1, _RING + 1):
            if avail <= to_boundary:
                return elapsed + avail
            avail -= to_boundary
            elapsed += to_boundary
            avail += self.slots[(self.head + j) % _RING]
            if j == _RING:
                avail += first  # the current slot drops too, with the on-time it gained
            to_boundary = self.slot_ns
        return elapsed + avail  # not reached: the budget is at most DUTY_SLOTS slots

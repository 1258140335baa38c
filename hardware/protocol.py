"""The realtime-pose I/O line protocol (version 1): encoding, parsing and the board's state machine.

The protocol is documented in ``docs/serial-protocol.md``; this module is its executable form and
is shared by the host adapter (:mod:`realtime_pose.hardware.serial`), the Python device emulator
(:mod:`realtime_pose.hardware.testing.emulator`) and, by hand-translation, the Arduino/Teensy sketch
(``hardware/firmware/realtime_pose_io/realtime_pose_io.ino``). Everything here is pure: no I/O,
no clocks; times are passed in as integer nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from realtime_pose.hardware.limits import HOLD_MIN_OFF, ChannelLimits

PROTOCOL_VERSION = 1
BOARD_ID = "RPIO"

MAX_LINE_BYTES = 48
"""Longest accepted command line in bytes, terminator included."""
MAX_TIME_MS = 3_600_000
"""Longest pulse / maximum on-time / minimum off-time / duty window accepted, in ms (fits a
32-bit microsecond counter)."""
MAX_WATCHDOG_MS = 60_000
MAX_SEQ = 999_999_999
DEFAULT_MAX_ON_MS = 1_000
DEFAULT_WATCHDOG_MS = 1_000

# Host -> device command letters.
CMD_PULSE = "P"
CMD_HIGH = "H"
CMD_LOW = "L"
CMD_ALL_OFF = "Z"
CMD_QUERY = "Q"
CMD_ECHO = "E"
CMD_MAX_ON = "M"
CMD_MIN_OFF = "R"
CMD_DUTY = "D"
CMD_WATCHDOG = "W"
CMD_HEARTBEAT = "K"
CMD_CONFIRM = "C"
CMD_VERSION = "V"

# Device -> host reply letters.
REPLY_ACK = "A"
REPLY_ECHO = "E"
REPLY_STATE = "S"
REPLY_VERSION = "V"
REPLY_EVENT = "X"
REPLY_ERROR = "!ERR"

ERR_CMD = "CMD"
ERR_ARG = "ARG"
ERR_CH = "CH"
ERR_RANGE = "RANGE"
ERR_LONG = "LONG"

# Causes of an output edge, as the emulator logs them.
CAUSE_MAX_ON = "max_on"
CAUSE_PULSE_END = "pulse_end"
CAUSE_WATCHDOG = "watchdog"
CAUSE_DUTY = "duty"

# What the board names in ``X <ch> HELD <why> [seq]`` when it refuses a switch-on.
HELD_MIN_OFF = "MINOFF"
HELD_DUTY = "DUTY"


class ProtocolError(ValueError):
    """A command line that the board answers with ``!ERR <code> <line>``."""

    def __init__(self, code: str, line: str) -> None:
        super().__init__(f"{code}: {line!r}")
        self.code = code
        self.line = line

    def reply(self) -> str:
        """The ``!ERR`` reply line (without terminator) the board sends for this error."""
        return f"{REPLY_ERROR} {self.code} {self.line[:24]}".rstrip()


# --------------------------------------------------------------------------------------------
# Host side: encoding
# --------------------------------------------------------------------------------------------


def format_ms(duration_ms: float) -> str:
    """Format a duration in ms with at most 3 decimals (µs resolution), no trailing zeros.

    Examples
    --------
    >>> format_ms(5.0), format_ms(2.5), format_ms(0.0126)
    ('5', '2.5', '0.013')
    """
    us = round(duration_ms * 1000.0)
    whole, frac = divmod(us, 1000)
    return str(whole) if frac == 0 else f"{whole}.{frac:03d}".rstrip("0")


def _with_seq(text: str, seq: int | None) -> bytes:
    return (f"{text} {seq}\n" if seq is not None else f"{text}\n").encode("ascii")


def encode_pulse(channel: int, duration_ms: float, seq: int | None = None) -> bytes:
    """``P <ch> <ms> [seq]``: output high now, low after ``duration_ms``."""
    return _with_seq(f"P {channel} {format_ms(duration_ms)}", seq)


def encode_set(channel: int, on: bool, seq: int | None = None) -> bytes:
    """``H <ch> [seq]`` (high) or ``L <ch> [seq]`` (low)."""
    return _with_seq(f"{CMD_HIGH if on else CMD_LOW} {channel}", seq)


def encode_all_off(seq: int | None = None) -> bytes:
    """``Z [seq]``: every output low."""
    return _with_seq(CMD_ALL_OFF, seq)


def encode_query(channel: int, seq: int | None = None) -> bytes:
    """``Q <ch> [seq]``: ask for a channel's state."""
    return _with_seq(f"Q {channel}", seq)


def encode_echo(seq: int) -> bytes:
    """``E <seq>``: answered at once with ``E <seq>`` (round-trip latency)."""
    return f"E {seq}\n".encode("ascii")


def encode_max_on(channel: int, max_on_ms: float, seq: int | None = None) -> bytes:
    """``M <ch> <ms> [seq]``: set the board's maximum on-time for a channel."""
    return _with_seq(f"M {channel} {format_ms(max_on_ms)}", seq)


def encode_min_off(channel: int, min_off_ms: float, seq: int | None = None) -> bytes:
    """``R <ch> <ms> [seq]``: the channel's minimum off-time ("rest"), 0 for none."""
    return _with_seq(f"R {channel} {format_ms(min_off_ms)}", seq)


def encode_duty(channel: int, on_ms: float, window_ms: float, seq: int | None = None) -> bytes:
    """``D <ch> <on_ms> <window_ms> [seq]``: at most ``on_ms`` on in any ``window_ms``
    (``on_ms == window_ms``: no duty limit)."""
    return _with_seq(f"D {channel} {format_ms(on_ms)} {format_ms(window_ms)}", seq)


def encode_watchdog(timeout_ms: int, seq: int | None = None) -> bytes:
    """``W <ms> [seq]``: host-silence watchdog timeout, 0 disables it."""
    return _with_seq(f"W {int(timeout_ms)}", seq)


def encode_heartbeat(seq: int | None = None) -> bytes:
    """``K [seq]``: keep-alive; does nothing but feed the watchdog."""
    return _with_seq(CMD_HEARTBEAT, seq)


def encode_confirm(enabled: bool, seq: int | None = None) -> bytes:
    """``C 0|1 [seq]``: acknowledgements off/on."""
    return _with_seq(f"C {int(bool(enabled))}", seq)


def encode_version(seq: int | None = None) -> bytes:
    """``V [seq]``: ask for the board id, protocol version and channel count."""
    return _with_seq(CMD_VERSION, seq)


# --------------------------------------------------------------------------------------------
# Parsing (both directions)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed host command. Times are integer microseconds; absent fields are ``None``.

    ``time_us`` is the first time field (``P``, ``M``, ``R``, and ``D``'s on-time),
    ``time2_us`` the second (``D``'s window).
    """

    op: str
    channel: int | None = None
    time_us: int | None = None
    value: int | None = None
    seq: int | None = None
    time2_us: int | None = None


# op -> (needs channel, its fields after the channel: "ms" (> 0), "ms0" (>= 0) or "int");
# every command takes an optional seq after them.
_GRAMMAR: dict[str, tuple[bool, tuple[str, ...]]] = {
    CMD_PULSE: (True, ("ms",)),
    CMD_HIGH: (True, ()),
    CMD_LOW: (True, ()),
    CMD_ALL_OFF: (False, ()),
    CMD_QUERY: (True, ()),
    CMD_ECHO: (False, ()),
    CMD_MAX_ON: (True, ("ms",)),
    CMD_MIN_OFF: (True, ("ms0",)),
    CMD_DUTY: (True, ("ms", "ms")),
    CMD_WATCHDOG: (False, ("int",)),
    CMD_HEARTBEAT: (False, ()),
    CMD_CONFIRM: (False, ("int",)),
    CMD_VERSION: (False, ()),
}


def _parse_uint(token: str, line: str, limit: int) -> int:
    if not token.isdigit() or len(token) > 10:
        raise ProtocolError(ERR_ARG, line)
    value = int(token)
    if value > limit:
        raise ProtocolError(ERR_RANGE, line)
    return value


def parse_ms_to_us(token: str, line: str) -> int:
    """Parse ``<ms>`` (digits with an optional ``.`` and up to 3 decimals) into microseconds."""
    whole, dot, frac = token.partition(".")
    if not whole.isdigit() or (dot and (not frac.isdigit() or len(frac) > 3)) or len(whole) > 7:
        raise ProtocolError(ERR_ARG, line)
    us = int(whole) * 1000 + (int(frac.ljust(3, "0")) if dot else 0)
    if us > MAX_TIME_MS * 1000:
        raise ProtocolError(ERR_RANGE, line)
    return us


def parse_command(line: str, n_channels: int) -> Command:
    """Parse one host command line (terminator already stripped) as the board does.

    Raises
    ------
    ProtocolError
        With the code the board puts in its ``!ERR`` reply.
    """
    if len(line) + 1 > MAX_LINE_BYTES:
        raise ProtocolError(ERR_LONG, line)
    tokens = line.split()
    if not tokens:
        raise ProtocolError(ERR_ARG, line)
    op = tokens[0].upper()
    if op not in _GRAMMAR:
        raise ProtocolError(ERR_CMD, line)
    args = tokens[1:]
    if op == CMD_ECHO:
        if len(args) != 1:
            raise ProtocolError(ERR_ARG, line)
        return Command(op, seq=_parse_uint(args[0], line, MAX_SEQ))
    needs_channel, kinds = _GRAMMAR[op]
    n_required = int(needs_channel) + len(kinds)
    if not n_required <= len(args) <= n_required + 1:
        raise ProtocolError(ERR_ARG, line)
    channel = value = None
    times: list[int] = []
    i = 0
    if needs_channel:
        if not args[0].isdigit():
            raise ProtocolError(ERR_ARG, line)
        channel = int(args[0])
        if channel >= n_channels:
            raise ProtocolError(ERR_CH, line)
        i = 1
    for kind in kinds:
        if kind == "int":
            limit = MAX_WATCHDOG_MS if op == CMD_WATCHDOG else 1
            value = _parse_uint(args[i], line, limit)
        else:
            us = parse_ms_to_us(args[i], line)
            if us == 0 and kind == "ms":
                raise ProtocolError(ERR_RANGE, line)
            times.append(us)
        i += 1
    seq = _parse_uint(args[i], line, MAX_SEQ) if i < len(args) else None
    if op == CMD_DUTY and times[0] > times[1]:
        raise ProtocolError(ERR_RANGE, line)  # more on-time than the window holds
    return Command(
        op,
        channel=channel,
        time_us=times[0] if times else None,
        value=value,
        seq=seq,
        time2_us=times[1] if len(times) > 1 else None,
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """One parsed device line. ``fields`` are the whitespace-separated tokens after the kind."""

    kind: str
    fields: tuple[str, ...]
    line: str

    @property
    def seq(self) -> int | None:
        """The sequence number this reply refers to, where it carries one."""
        f = self.fields
        if self.kind in (REPLY_ACK, REPLY_ECHO) and f and f[0].isdigit():
            return int(f[0])
        if self.kind == REPLY_STATE and len(f) >= 5 and f[4].isdigit():
            return int(f[4])
        if self.kind == REPLY_VERSION and len(f) >= 4 and f[3].isdigit():
            return int(f[3])
        return None


def parse_reply(line: str) -> Reply:
    """Split a device line into its kind (``A``, ``E``, ``S``, ``V``, ``X``, ``!ERR``) and fields.

    The kind is the first token; ``fields`` are the remaining tokens.
    """
    tokens = line.split()
    if not tokens:
        return Reply("", (), line)
    return Reply(tokens[0], tuple(tokens[1:]), line)


# --------------------------------------------------------------------------------------------
# Device side: the board's state machine (the emulator's and the sketch's behaviour)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edge:
    """An output transition made by the board."""

    channel: int
    state: bool
    cause: str  # the command letter, or one of the CAUSE_* constants


@dataclass(slots=True)
class BoardState:
    """The protocol's device-side behaviour, driven by ``handle_line`` and ``tick``.

    Mirrors the firmware sketch: per-channel output state and off deadline, per-channel maximum
    on-time, minimum off-time and duty-cycle limit (:class:`~.limits.ChannelLimits`, the code
    the host runs too), host-silence watchdog (any received byte feeds it), optional
    acknowledgements. At boot no channel has a minimum off-time or a duty limit.

    Parameters
    ----------
    n_channels
        Number of output channels (0 .. n-1).
    max_on_ms
        Initial maximum on-time of every channel.
    watchdog_ms
        Initial host-silence timeout; 0 disables the watchdog.
    """

    n_channels: int = 8
    max_on_ms: float = DEFAULT_MAX_ON_MS
    watchdog_ms: int = DEFAULT_WATCHDOG_MS
    ack: bool = False
    on: list[bool] = field(default_factory=list)
    off_at_ns: list[int] = field(default_factory=list)
    off_cause: list[str] = field(default_factory=list)
    max_on_ns: list[int] = field(default_factory=list)
    on_since_ns: list[int] = field(default_factory=list)
    limits: list[ChannelLimits] = field(default_factory=list)
    last_rx_ns: int = 0
    watchdog_tripped: bool = False

    def __post_init__(self) -> None:
        self.on = [False] * self.n_channels
        self.off_at_ns = [0] * self.n_channels
        self.off_cause = [""] * self.n_channels
        self.max_on_ns = [round(self.max_on_ms * 1e6)] * self.n_channels
        self.on_since_ns = [0] * self.n_channels
        self.limits = [ChannelLimits() for _ in range(self.n_channels)]

    def banner(self) -> str:
        """The line the board sends when it boots: ``V RPIO <version> <n_channels>``."""
        return f"{REPLY_VERSION} {BOARD_ID} {PROTOCOL_VERSION} {self.n_channels}"

    def feed(self, now_ns: int) -> None:
        """Note that bytes arrived (feeds the watchdog and re-arms it after a trip)."""
        self.last_rx_ns = now_ns
        self.watchdog_tripped = False

    def handle_line(self, line: str, now_ns: int) -> tuple[list[str], list[Edge]]:
        """Execute one command line; return the reply lines and the output edges it caused."""
        try:
            cmd = parse_command(line, self.n_channels)
        except ProtocolError as err:
            return [err.reply()], []
        replies: list[str] = []
        edges: list[Edge] = []
        op, ch = cmd.op, cmd.channel
        if op in (CMD_PULSE, CMD_HIGH):
            assert ch is not None
            if op == CMD_PULSE:
                assert cmd.time_us is not None
                held = self._switch_on(ch, now_ns, cmd.time_us * 1000, CAUSE_PULSE_END)
            else:
                held = self._switch_on(ch, now_ns, self.max_on_ns[ch], CAUSE_MAX_ON)
            if held is None:
                edges.append(Edge(ch, True, op))
            else:
                why = HELD_MIN_OFF if held == HOLD_MIN_OFF else HELD_DUTY
                tail = f" {cmd.seq}" if cmd.seq is not None else ""
                replies.append(f"{REPLY_EVENT} {ch} HELD {why}{tail}")
        elif op == CMD_LOW:
            assert ch is not None
            if self.on[ch]:
                edges.append(Edge(ch, False, op))
                self._switch_off(ch, now_ns)
        elif op == CMD_ALL_OFF:
            edges.extend(self._all_off(op, now_ns))
        elif op == CMD_QUERY:
            assert ch is not None
            remaining_ms = max(0, self.off_at_ns[ch] - now_ns) // 1_000_000 if self.on[ch] else 0
            max_ms = format_ms(self.max_on_ns[ch] / 1e6)
            tail = f" {cmd.seq}" if cmd.seq is not None else ""
            replies.append(f"{REPLY_STATE} {ch} {int(self.on[ch])} {remaining_ms} {max_ms}{tail}")
        elif op == CMD_ECHO:
            replies.append(f"{REPLY_ECHO} {cmd.seq}")
        elif op == CMD_MAX_ON:
            assert ch is not None and cmd.time_us is not None
            self.max_on_ns[ch] = cmd.time_us * 1000
            limit_ns = self.on_since_ns[ch] + self.max_on_ns[ch]
            if self.on[ch] and self.off_at_ns[ch] > limit_ns:
                self.off_at_ns[ch] = limit_ns  # counted from the edge: may be due at once
                self.off_cause[ch] = CAUSE_MAX_ON
        elif op == CMD_MIN_OFF:
            assert ch is not None and cmd.time_us is not None
            self.limits[ch].set_min_off(cmd.time_us * 1000)
        elif op == CMD_DUTY:
            assert ch is not None and cmd.time_us is not None and cmd.time2_us is not None
            limits = self.limits[ch]
            limits.set_duty(cmd.time_us * 1000, cmd.time2_us * 1000, now_ns)
            duty_end = limits.duty_end_ns()
            if self.on[ch] and duty_end is not None and self.off_at_ns[ch] > duty_end:
                self.off_at_ns[ch] = duty_end  # the allowance counts from now
                self.off_cause[ch] = CAUSE_DUTY
        elif op == CMD_WATCHDOG:
            assert cmd.value is not None
            self.watchdog_ms = cmd.value
        elif op == CMD_CONFIRM:
            self.ack = bool(cmd.value)
        elif op == CMD_VERSION:
            tail = f" {cmd.seq}" if cmd.seq is not None else ""
            replies.append(self.banner() + tail)
        if self.ack and op not in (CMD_ECHO, CMD_QUERY, CMD_VERSION):
            replies.append(f"{REPLY_ACK} {cmd.seq if cmd.seq is not None else '-'} {op}")
        return replies, edges

    def tick(self, now_ns: int) -> tuple[list[str], list[Edge]]:
        """Apply timers due at ``now_ns``: pulse ends, max on-time cuts, the watchdog."""
        replies: list[str] = []
        edges: list[Edge] = []
        for ch in range(self.n_channels):
            if self.on[ch] and now_ns - self.off_at_ns[ch] >= 0:
                self._switch_off(ch, now_ns)
                edges.append(Edge(ch, False, self.off_cause[ch]))
                if self.off_cause[ch] == CAUSE_MAX_ON:
                    replies.append(f"{REPLY_EVENT} {ch} MAX")
                elif self.off_cause[ch] == CAUSE_DUTY:
                    replies.append(f"{REPLY_EVENT} {ch} DUTY")
        if (
            self.watchdog_ms > 0
            and not self.watchdog_tripped
            and now_ns - self.last_rx_ns >= self.watchdog_ms * 1_000_000
        ):
            self.watchdog_tripped = True
            cut = self._all_off(CAUSE_WATCHDOG, now_ns)
            if cut:
                edges.extend(cut)
                replies.append(f"{REPLY_EVENT} * WDG")
        return replies, edges

    def next_deadline_ns(self) -> int | None:
        """The earliest time at which ``tick`` has something to do, or ``None``."""
        deadlines = [t for t, on in zip(self.off_at_ns, self.on, strict=True) if on]
        if self.watchdog_ms > 0 and not self.watchdog_tripped:
            deadlines.append(self.last_rx_ns + self.watchdog_ms * 1_000_000)
        return min(deadlines) if deadlines else None

    def _switch_on(self, ch: int, now_ns: int, duration_ns: int, cause: str) -> str | None:
        """On for ``duration_ns`` from now, but never past the max on-time counted from the
        off→on edge nor past the duty budget: re-sending ``H`` or ``P`` cannot extend an output
        beyond its limits. An off→on edge within the minimum off-time, or with no duty budget
        left, is refused: returns the hold-off cause and the channel stays off."""
        limits = self.limits[ch]
        if not self.on[ch]:
            held = limits.switch_on(now_ns)
            if held is not None:
                return held
            self.on_since_ns[ch] = now_ns
        self.on[ch] = True
        off_at = now_ns + duration_ns
        limit_ns, limit_cause = self.on_since_ns[ch] + self.max_on_ns[ch], CAUSE_MAX_ON
        duty_end = limits.duty_end_ns()
        if duty_end is not None and duty_end < limit_ns:
            limit_ns, limit_cause = duty_end, CAUSE_DUTY
        if off_at >= limit_ns:
            off_at, cause = limit_ns, limit_cause
        self.off_at_ns[ch] = off_at
        self.off_cause[ch] = cause
        return None

    def _switch_off(self, ch: int, now_ns: int) -> None:
        self.on[ch] = False
        self.limits[ch].switch_off(now_ns)

    def _all_off(self, cause: str, now_ns: int) -> list[Edge]:
        edges = [Edge(ch, False, cause) for ch in range(self.n_channels) if self.on[ch]]
        for ch in range(self.n_channels):
            if self.on[ch]:
                self._switch_off(ch, now_ns)
        return edges

// realtime_pose_io.ino: the realtime-pose serial output protocol, version 1, for Arduino / Teensy.
//
// The contract is docs/serial-protocol.md; the executable reference is hardware/protocol.py
// (BoardState). This sketch is a line-by-line translation of that reference: same commands,
// same replies, same limits, same error codes. If you change one, change the other and the doc.
//
//   Host -> board (ASCII, one command per line, '\n' terminated, fields separated by spaces):
//     P <ch> <ms> [seq]   pulse: on now, off after <ms> (decimals allowed: 2.5 = 2500 us)
//     H <ch> [seq]        on, until L / Z / the channel's max on-time / the watchdog
//     L <ch> [seq]        off
//     Z [seq]             every channel off
//     Q <ch> [seq]        query      -> S <ch> <0|1> <remaining_ms> <max_ms> [seq]
//     E <seq>             echo       -> E <seq>   (answered before anything else happens)
//     M <ch> <ms> [seq]   set the channel's maximum on-time
//     R <ch> <ms> [seq]   set the channel's minimum off-time ("rest"), 0 = none (the default)
//     D <ch> <on_ms> <window_ms> [seq]
//                         duty cycle: at most <on_ms> on in any <window_ms>; equal = no limit
//     W <ms> [seq]        host-silence watchdog timeout, 0 = off (default 1000 ms)
//     K [seq]             heartbeat (any byte feeds the watchdog; K exists for idle hosts)
//     C <0|1> [seq]       acknowledgements off/on (A <seq|-> <op> after each command)
//     V [seq]             version    -> V RPIO 1 <channels> [seq]
//   Board -> host, unsolicited:
//     V RPIO 1 <channels>   at boot
//     X <ch> MAX            the board cut <ch> at its maximum on-time
//     X <ch> DUTY           the board cut <ch> when its duty-cycle budget ran out
//     X <ch> HELD MINOFF [seq]   a P/H was refused: <ch> went off less than its R ago
//     X <ch> HELD DUTY [seq]     a P/H was refused: <ch> has no duty budget left
//     X * WDG               the watchdog fired and switched outputs off
//     !ERR <CODE> <line>    a refused line: CMD, ARG, CH, RANGE or LONG, then its first 24 chars
//
// Design rules: nothing blocks. No delay(), no String, no heap; timers are micros() differences
// in uint32 arithmetic (correct across the 71.6-minute wrap because every duration is shorter
// than that: MAX_TIME_MS is 60 minutes; times that could grow older are retired by runTimers
// first). The maximum on-time, the minimum off-time, the duty-cycle limit and the watchdog run on
// the board, so an output stays within them even when the host process dies, the cable is
// pulled or the PC hangs. RAM: about 100 bytes per channel (mostly the duty-cycle slots).
//
// NOT COMPILED FOR A BOARD in the project's CI (no Arduino toolchain there). Its logic is compiled
// for the PC with a stand-in Arduino core (tests/hardware/firmware_harness) and every reply and
// pin edge is compared with hardware/protocol.py's BoardState (tests/hardware/
// test_firmware_sketch.py), but the AVR/ARM build, the real Serial and the pins are unverified:
// build it with the Arduino IDE / arduino-cli (boards: Uno, Nano, Leonardo, Mega, Due,
// Teensy 3.x/4.x) and run `python -m realtime_pose.hardware.testing.board_check <port>` (docs/serial-protocol.md,
// "Checking a board") before trusting it on a rig.

#include <Arduino.h>
#include <string.h>

// ----------------------------------------------------------------------------------------------
// Rig configuration: edit these.

// Output pins, in channel order (channel 0 is OUTPUT_PINS[0]). At most 64 channels.
static const uint8_t OUTPUT_PINS[] = {2, 3, 4, 5, 6, 7, 8, 9};
// true: channel on = pin HIGH. false: active-low drivers (on = LOW).
static const bool ACTIVE_HIGH = true;
// Ignored by native-USB boards (Teensy, Leonardo, Due native port); used by Uno/Nano/Mega.
static const uint32_t BAUD_RATE = 115200UL;
// Defaults at boot; the host normally sets both per channel with M and W when it connects.
static const uint32_t DEFAULT_MAX_ON_MS = 1000UL;
static const uint32_t DEFAULT_WATCHDOG_MS = 1000UL;

// ----------------------------------------------------------------------------------------------
// Protocol constants (identical to hardware/protocol.py).

#define PROTOCOL_VERSION 1
#define BOARD_ID "RPIO"
#define MAX_LINE_BYTES 48            // longest accepted line, terminator included
#define MAX_TIME_MS 3600000UL        // longest pulse / max on-time (60 min < 2^32 us)
#define MAX_WATCHDOG_MS 60000UL
#define MAX_SEQ 999999999UL
#define ERR_ECHO_CHARS 24            // how much of a refused line !ERR repeats
#define DUTY_SLOTS 8                 // duty-cycle slots per window (hardware/limits.py)
#define DUTY_RING (DUTY_SLOTS + 1)   // the current slot and the DUTY_SLOTS before it

static const uint8_t N_CHANNELS = sizeof(OUTPUT_PINS) / sizeof(OUTPUT_PINS[0]);

enum OffCause : uint8_t { CAUSE_PULSE_END = 0, CAUSE_MAX_ON = 1, CAUSE_DUTY = 2 };
enum HoldCause : uint8_t { HOLD_MIN_OFF = 1, HOLD_DUTY = 2 };

struct Channel {
  bool on;
  uint32_t on_start_us;     // when the current on-period (or its last P/H/M/D) started
  uint32_t on_duration_us;  // off when micros() - on_start_us >= on_duration_us
  uint32_t max_on_us;
  uint32_t edge_us;         // when the channel last went from off to on (max on-time origin)
  OffCause cause;           // why the pending off will happen
  // Minimum off-time (R; hardware/limits.py ChannelLimits).
  uint32_t min_off_us;
  uint32_t off_us;          // when the channel last went off
  bool off_recent;          // off_us is younger than MAX_TIME_MS (older, it no longer matters)
  // Duty cycle (D): on-time per slot, the current slot at `head`, DUTY_SLOTS older ones after.
  uint32_t duty_on_us;      // budget per window; >= duty_window_us: no duty limit
  uint32_t duty_window_us;
  uint32_t slot_us;         // ceil(duty_window_us / DUTY_SLOTS)
  uint32_t slot_start_us;   // start of the current slot
  uint32_t acct_us;         // on-time is counted up to here
  uint32_t slots[DUTY_RING];
  uint8_t head;
  bool duty_bounded;        // the current on-period has a duty allowance:
  uint32_t duty_from_us;    //   duty_len_us of on-time from duty_from_us
  uint32_t duty_len_us;
};

static Channel channels[N_CHANNELS];
static uint32_t watchdog_ms = DEFAULT_WATCHDOG_MS;
static uint32_t last_rx_us = 0;
static bool watchdog_tripped = false;
static bool acks_enabled = false;

static char line_buf[MAX_LINE_BYTES];  // MAX_LINE_BYTES - 1 characters + NUL
static uint8_t line_len = 0;
static bool line_too_long = false;

// ----------------------------------------------------------------------------------------------
// Output lines.

static inline void drive(uint8_t ch, bool on) {
#if defined(TEENSYDUINO)
  digitalWriteFast(OUTPUT_PINS[ch], (on == ACTIVE_HIGH) ? HIGH : LOW);  // tens of ns
#else
  digitalWrite(OUTPUT_PINS[ch], (on == ACTIVE_HIGH) ? HIGH : LOW);  // ~4 us on a 16 MHz AVR
#endif
}

// ----------------------------------------------------------------------------------------------
// Replies. Built in a stack buffer and written in one call; dropped (never blocking the loop)
// when the USB/UART transmit buffer has no room, i.e. when the host stopped reading.

struct Reply {
  char buf[64];
  uint8_t len;
};

static void replyBegin(Reply &r) { r.len = 0; }

static void replyChar(Reply &r, char c) {
  if (r.len < sizeof(r.buf) - 1) r.buf[r.len++] = c;
}

static void replyStr(Reply &r, const char *s) {
  while (*s) replyChar(r, *s++);
}

static void replyUint(Reply &r, uint32_t v) {
  char digits[10];
  uint8_t n = 0;
  do {
    digits[n++] = (char)('0' + (v % 10UL));
    v /= 10UL;
  } while (v != 0 && n < sizeof(digits));
  while (n) replyChar(r, digits[--n]);
}

// Milliseconds given in microseconds, printed like protocol.format_ms: "5", "2.5", "0.013".
static void replyMs(Reply &r, uint32_t us) {
  replyUint(r, us / 1000UL);
  uint16_t frac = (uint16_t)(us % 1000UL);
  if (frac == 0) return;
  char f[3] = {(char)('0' + frac / 100), (char)('0' + (frac / 10) % 10), (char)('0' + frac % 10)};
  uint8_t n = 3;
  while (n > 0 && f[n - 1] == '0') --n;
  replyChar(r, '.');
  for (uint8_t i = 0; i < n; ++i) replyChar(r, f[i]);
}

static void replySeq(Reply &r, bool has_seq, uint32_t seq) {
  if (has_seq) {
    replyChar(r, ' ');
    replyUint(r, seq);
  }
}

static void replySend(Reply &r) {
  replyChar(r, '\n');
  if (Serial.availableForWrite() >= (int)r.len) {
    Serial.write((const uint8_t *)r.buf, r.len);
#if defined(TEENSYDUINO)
    Serial.send_now();  // do not wait for the USB packet to fill: replies are latency-critical
#endif
  }
}

static void replyBanner(bool has_seq, uint32_t seq) {
  Reply r;
  replyBegin(r);
  replyStr(r, "V " BOARD_ID " ");
  replyUint(r, PROTOCOL_VERSION);
  replyChar(r, ' ');
  replyUint(r, N_CHANNELS);
  replySeq(r, has_seq, seq);
  replySend(r);
}

// "!ERR <CODE> <first 24 characters of the line>", unprintable bytes as '?', trailing spaces
// removed.
static void replyError(const char *code, const char *line) {
  Reply r;
  replyBegin(r);
  replyStr(r, "!ERR ");
  replyStr(r, code);
  replyChar(r, ' ');
  for (uint8_t i = 0; i < ERR_ECHO_CHARS && line[i]; ++i) {
    const char c = line[i];
    replyChar(r, ((c >= 32 && c < 127) || c == '\t' || c == '\r') ? c : '?');
  }
  while (r.len > 0 && (r.buf[r.len - 1] == ' ' || r.buf[r.len - 1] == '\t' ||
                       r.buf[r.len - 1] == '\r')) {
    --r.len;
  }
  replySend(r);
}

// ----------------------------------------------------------------------------------------------
// Minimum off-time and duty cycle (hardware/limits.py ChannelLimits, line by line).

static inline bool dutyLimited(const Channel &c) { return c.duty_on_us < c.duty_window_us; }

// Bring the slots up to now: on-time since acct_us goes into the slots it fell in; slots older
// than DUTY_SLOTS slots are dropped. Calling it more or less often changes nothing.
static void dutyAdvance(Channel &c, uint32_t now_us) {
  if (!dutyLimited(c)) return;
  const uint32_t size = c.slot_us;
  const uint32_t elapsed = now_us - c.slot_start_us;
  if (elapsed >= size) {
    const uint32_t k = elapsed / size;  // slot boundaries crossed
    if (c.on) c.slots[c.head] += size - (c.acct_us - c.slot_start_us);
    const uint32_t fill = c.on ? size : 0;
    for (uint32_t j = (k > DUTY_RING) ? k - DUTY_RING + 1 : 1; j <= k; ++j) {
      c.slots[(c.head + j % DUTY_RING) % DUTY_RING] = (j < k) ? fill : 0;
    }
    c.head = (uint8_t)((c.head + k % DUTY_RING) % DUTY_RING);
    c.slot_start_us += k * size;
    c.acct_us = c.slot_start_us;
  }
  if (c.on) {
    c.slots[c.head] += now_us - c.acct_us;
    c.acct_us = now_us;
  }
}

// On-time left from now if the channel stays on (after dutyAdvance): the on-time grows with
// the time elapsed, and each slot boundary drops the oldest slot from the count.
static uint32_t dutyAllowanceUs(const Channel &c, uint32_t now_us) {
  uint32_t used = 0;
  for (uint8_t i = 0; i < DUTY_RING; ++i) used += c.slots[i];
  if (used >= c.duty_on_us) return 0;
  uint32_t avail = c.duty_on_us - used;
  const uint32_t first = c.slot_us - (now_us - c.slot_start_us);
  uint32_t to_boundary = first;
  uint32_t elapsed = 0;
  for (uint8_t j = 1; j <= DUTY_RING; ++j) {
    if (avail <= to_boundary) return elapsed + avail;
    avail -= to_boundary;
    elapsed += to_boundary;
    avail += c.slots[(c.head + j) % DUTY_RING];
    if (j == DUTY_RING) avail += first;  // the current slot drops too, with what it gained
    to_boundary = c.slot_us;
  }
  return elapsed + avail;  // not reached: the budget is at most DUTY_SLOTS slots
}

// D: new values restart the accounting; the same values again change nothing.
static void dutySet(Channel &c, uint32_t on_us, uint32_t window_us, uint32_t now_us) {
  if (on_us == c.duty_on_us && window_us == c.duty_window_us) return;
  c.duty_on_us = on_us;
  c.duty_window_us = window_us;
  c.slot_us = window_us / DUTY_SLOTS + ((window_us % DUTY_SLOTS) ? 1 : 0);
  for (uint8_t i = 0; i < DUTY_RING; ++i) c.slots[i] = 0;
  c.head = 0;
  c.slot_start_us = now_us;
  c.acct_us = now_us;
  c.duty_from_us = now_us;
  c.duty_bounded = c.on && dutyLimited(c);
  c.duty_len_us = c.duty_bounded ? dutyAllowanceUs(c, now_us) : 0;
}

// Time left of the current on-period's duty allowance (0 when used up).
static uint32_t dutyLeftUs(const Channel &c, uint32_t now_us) {
  uint32_t since = now_us - c.duty_from_us;
  return (since < c.duty_len_us) ? c.duty_len_us - since : 0;
}

static void replyHeld(uint8_t ch, HoldCause hold, bool has_seq, uint32_t seq) {
  Reply r;
  replyBegin(r);
  replyStr(r, "X ");
  replyUint(r, ch);
  replyStr(r, (hold == HOLD_MIN_OFF) ? " HELD MINOFF" : " HELD DUTY");
  replySeq(r, has_seq, seq);
  replySend(r);
}

// ----------------------------------------------------------------------------------------------
// Channel state changes (BoardState._switch_on / L / _all_off).

// Time left before the max on-time, counted from the off->on edge (0 when already reached).
static uint32_t allowedUs(const Channel &c, uint32_t now_us) {
  uint32_t since_edge = now_us - c.edge_us;
  return (since_edge < c.max_on_us) ? c.max_on_us - since_edge : 0;
}

// On for duration_us from now, never past the max on-time counted from the off->on edge nor past
// the duty budget, so a host re-sending H or P cannot keep an output on beyond its limits. An
// off->on edge within the minimum off-time, or with no duty budget left, is refused (X HELD).
static void switchOn(uint8_t ch, uint32_t now_us, uint32_t duration_us, OffCause cause,
                     bool has_seq, uint32_t seq) {
  Channel &c = channels[ch];
  if (!c.on) {
    if (c.off_recent && (uint32_t)(now_us - c.off_us) < c.min_off_us) {
      replyHeld(ch, HOLD_MIN_OFF, has_seq, seq);
      return;
    }
    c.duty_bounded = false;
    if (dutyLimited(c)) {
      dutyAdvance(c, now_us);
      const uint32_t allowance = dutyAllowanceUs(c, now_us);
      if (allowance == 0) {
        replyHeld(ch, HOLD_DUTY, has_seq, seq);
        return;
      }
      c.duty_bounded = true;
      c.duty_len_us = allowance;
    }
    c.duty_from_us = now_us;
    c.acct_us = now_us;
    c.edge_us = now_us;
  }
  uint32_t allowed = allowedUs(c, now_us);
  OffCause limit_cause = CAUSE_MAX_ON;
  if (c.duty_bounded) {
    const uint32_t duty_left = dutyLeftUs(c, now_us);
    if (duty_left < allowed) {
      allowed = duty_left;
      limit_cause = CAUSE_DUTY;
    }
  }
  if (duration_us >= allowed) {
    duration_us = allowed;
    cause = limit_cause;
  }
  drive(ch, true);
  c.on = true;
  c.on_start_us = now_us;
  c.on_duration_us = duration_us;
  c.cause = cause;
}

static void switchOff(uint8_t ch, uint32_t now_us) {
  Channel &c = channels[ch];
  if (c.on) {
    dutyAdvance(c, now_us);  // its on-time counts up to now
    c.off_us = now_us;
    c.off_recent = true;
  }
  drive(ch, false);
  c.on = false;
}

// Returns whether any channel was on.
static bool allOff(uint32_t now_us) {
  bool any = false;
  for (uint8_t ch = 0; ch < N_CHANNELS; ++ch) {
    if (channels[ch].on) any = true;
    switchOff(ch, now_us);
  }
  return any;
}

// ----------------------------------------------------------------------------------------------
// Parsing (protocol.parse_command). Every rejection names the same code as the reference.

static inline bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Unsigned decimal, digits only, at most max_digits; saturates at 0xFFFFFFFF (then RANGE).
static bool parseUint(const char *s, uint8_t max_digits, uint32_t *out) {
  uint8_t n = 0;
  uint32_t v = 0;
  for (; *s; ++s, ++n) {
    if (*s < '0' || *s > '9' || n >= max_digits) return false;
    uint32_t d = (uint32_t)(*s - '0');
    v = (v > (0xFFFFFFFFUL - d) / 10UL) ? 0xFFFFFFFFUL : v * 10UL + d;
  }
  if (n == 0) return false;
  *out = v;
  return true;
}

// "<ms>" = up to 7 digits, optionally '.' and 1..3 digits, into microseconds (parse_ms_to_us).
// Returns 0 on success, else the error code.
static const char *parseMsToUs(const char *s, uint32_t *out_us) {
  uint32_t whole = 0;
  uint8_t n_whole = 0;
  while (*s >= '0' && *s <= '9') {
    if (n_whole >= 7) return "ARG";
    whole = whole * 10UL + (uint32_t)(*s - '0');
    ++n_whole;
    ++s;
  }
  if (n_whole == 0) return "ARG";
  uint32_t frac = 0;
  if (*s == '.') {
    ++s;
    uint8_t n_frac = 0;
    while (*s >= '0' && *s <= '9') {
      if (n_frac >= 3) return "ARG";
      frac = frac * 10UL + (uint32_t)(*s - '0');
      ++n_frac;
      ++s;
    }
    if (n_frac == 0) return "ARG";
    while (n_frac < 3) {
      frac *= 10UL;
      ++n_frac;
    }
  }
  if (*s != '\0') return "ARG";
  if (whole > MAX_TIME_MS) return "RANGE";  // 7 digits fit; check before multiplying
  uint32_t us = whole * 1000UL + frac;
  if (us > MAX_TIME_MS * 1000UL) return "RANGE";
  *out_us = us;
  return 0;
}

// ----------------------------------------------------------------------------------------------
// One command line (BoardState.handle_line). `line` has no terminator and is NUL-terminated.
// Like the emulator, surrounding spaces are stripped and a blank line is ignored (it only fed
// the watchdog), so a host may send "\n" to resynchronise after noise.

static void handleLine(char *line, uint32_t now_us) {
  while (isSpace(*line)) ++line;
  size_t len = strlen(line);
  while (len > 0 && isSpace(line[len - 1])) line[--len] = '\0';
  if (len == 0) return;

  // Keep a copy for !ERR: tokenising writes NULs into `line`.
  char original[ERR_ECHO_CHARS + 1];
  strncpy(original, line, ERR_ECHO_CHARS);
  original[ERR_ECHO_CHARS] = '\0';

  if (strlen(line) + 1 > MAX_LINE_BYTES) {
    replyError("LONG", original);
    return;
  }

  // No command takes more than 5 fields (D <ch> <on> <window> <seq>); a 6th only makes the line
  // an ARG error (after the command letter is checked, as the reference does).
  char *tokens[6];
  uint8_t n_tokens = 0;
  char *p = line;
  while (*p) {
    while (*p && isSpace(*p)) *p++ = '\0';
    if (!*p) break;
    if (n_tokens < 6) tokens[n_tokens++] = p;
    while (*p && !isSpace(*p)) ++p;
  }
  if (tokens[0][1] != '\0') {  // a multi-letter first token is an unknown command
    replyError("CMD", original);
    return;
  }
  char op = tokens[0][0];
  if (op >= 'a' && op <= 'z') op = (char)(op - 'a' + 'A');
  char **args = tokens + 1;
  uint8_t n_args = n_tokens - 1;

  bool needs_channel = false;
  char time_kind = 0;  // 'm': <ms> > 0, 'z': <ms> >= 0, 'i': integer (W, C)
  uint8_t n_fields = 0;  // how many of them
  switch (op) {
    case 'P': needs_channel = true; time_kind = 'm'; n_fields = 1; break;
    case 'H': case 'L': case 'Q': needs_channel = true; break;
    case 'M': needs_channel = true; time_kind = 'm'; n_fields = 1; break;
    case 'R': needs_channel = true; time_kind = 'z'; n_fields = 1; break;
    case 'D': needs_channel = true; time_kind = 'm'; n_fields = 2; break;
    case 'W': case 'C': time_kind = 'i'; n_fields = 1; break;
    case 'Z': case 'K': case 'V': case 'E': break;
    default:
      replyError("CMD", original);
      return;
  }

  uint32_t seq = 0;
  bool has_seq = false;
  if (op == 'E') {
    if (n_args != 1) {
      replyError("ARG", original);
      return;
    }
    if (!parseUint(args[0], 10, &seq)) {
      replyError("ARG", original);
      return;
    }
    if (seq > MAX_SEQ) {
      replyError("RANGE", original);
      return;
    }
    // The echo: answered before anything else, for round-trip latency measurement.
    Reply r;
    replyBegin(r);
    replyStr(r, "E ");
    replyUint(r, seq);
    replySend(r);
    return;
  }

  uint8_t n_required = (needs_channel ? 1 : 0) + n_fields;
  if (n_args < n_required || n_args > n_required + 1) {
    replyError("ARG", original);
    return;
  }
  uint8_t i = 0;
  uint8_t ch = 0;
  if (needs_channel) {
    uint32_t v;
    if (!parseUint(args[0], 255, &v)) {
      replyError("ARG", original);
      return;
    }
    if (v >= N_CHANNELS) {
      replyError("CH", original);
      return;
    }
    ch = (uint8_t)v;
    i = 1;
  }
  uint32_t times_us[2] = {0, 0};
  uint32_t value = 0;
  if (time_kind == 'm' || time_kind == 'z') {
    for (uint8_t f = 0; f < n_fields; ++f) {
      const char *err = parseMsToUs(args[i], &times_us[f]);
      if (err) {
        replyError(err, original);
        return;
      }
      if (times_us[f] == 0 && time_kind == 'm') {
        replyError("RANGE", original);
        return;
      }
      ++i;
    }
  } else if (time_kind == 'i') {
    if (!parseUint(args[i], 10, &value)) {
      replyError("ARG", original);
      return;
    }
    if (value > (op == 'W' ? MAX_WATCHDOG_MS : 1UL)) {
      replyError("RANGE", original);
      return;
    }
    ++i;
  }
  if (i < n_args) {
    if (!parseUint(args[i], 10, &seq)) {
      replyError("ARG", original);
      return;
    }
    if (seq > MAX_SEQ) {
      replyError("RANGE", original);
      return;
    }
    has_seq = true;
  }
  if (op == 'D' && times_us[0] > times_us[1]) {  // more on-time than the window holds
    replyError("RANGE", original);
    return;
  }
  const uint32_t time_us = times_us[0];

  Channel &c = channels[ch];
  switch (op) {
    case 'P':
      switchOn(ch, now_us, time_us, CAUSE_PULSE_END, has_seq, seq);
      break;
    case 'H':
      switchOn(ch, now_us, c.max_on_us, CAUSE_MAX_ON, has_seq, seq);
      break;
    case 'L':
      switchOff(ch, now_us);
      break;
    case 'Z':
      allOff(now_us);
      break;
    case 'Q': {
      uint32_t remaining_us = 0;
      if (c.on) {
        uint32_t elapsed = now_us - c.on_start_us;
        remaining_us = (elapsed < c.on_duration_us) ? c.on_duration_us - elapsed : 0;
      }
      Reply r;
      replyBegin(r);
      replyStr(r, "S ");
      replyUint(r, ch);
      replyStr(r, c.on ? " 1 " : " 0 ");
      replyUint(r, remaining_us / 1000UL);
      replyChar(r, ' ');
      replyMs(r, c.max_on_us);
      replySeq(r, has_seq, seq);
      replySend(r);
      break;
    }
    case 'M': {
      c.max_on_us = time_us;
      if (c.on) {
        uint32_t elapsed = now_us - c.on_start_us;
        uint32_t remaining = (elapsed < c.on_duration_us) ? c.on_duration_us - elapsed : 0;
        uint32_t allowed = allowedUs(c, now_us);
        if (remaining > allowed) {  // the new limit, counted from the edge, ends it sooner
          c.on_start_us = now_us;
          c.on_duration_us = allowed;
          c.cause = CAUSE_MAX_ON;
        }
      }
      break;
    }
    case 'R':
      c.min_off_us = time_us;
      break;
    case 'D':
      dutySet(c, times_us[0], times_us[1], now_us);
      if (c.on && c.duty_bounded) {
        uint32_t elapsed = now_us - c.on_start_us;
        uint32_t remaining = (elapsed < c.on_duration_us) ? c.on_duration_us - elapsed : 0;
        if (remaining > c.duty_len_us) {  // the allowance counts from now
          c.on_start_us = now_us;
          c.on_duration_us = c.duty_len_us;
          c.cause = CAUSE_DUTY;
        }
      }
      break;
    case 'W':
      watchdog_ms = value;
      break;
    case 'K':
      break;  // the bytes already fed the watchdog
    case 'C':
      acks_enabled = (value != 0);
      break;
    case 'V':
      replyBanner(has_seq, seq);
      break;
  }

  if (acks_enabled && op != 'Q' && op != 'V') {
    Reply r;
    replyBegin(r);
    replyStr(r, "A ");
    if (has_seq) {
      replyUint(r, seq);
    } else {
      replyChar(r, '-');
    }
    replyChar(r, ' ');
    replyChar(r, op);
    replySend(r);
  }
}

// ----------------------------------------------------------------------------------------------
// Input framing: bytes -> lines. Any byte feeds the watchdog. A line longer than
// MAX_LINE_BYTES - 1 characters is refused with LONG when its newline arrives.

static void readSerial() {
  int budget = 64;  // bound the time spent here so timers stay accurate under a byte flood
  while (budget-- > 0 && Serial.available() > 0) {
    int c = Serial.read();
    if (c < 0) break;
    const uint32_t now_us = micros();
    last_rx_us = now_us;
    watchdog_tripped = false;
    if (c == '\n') {
      line_buf[line_len] = '\0';
      if (line_too_long) {
        replyError("LONG", line_buf);
      } else {
        handleLine(line_buf, now_us);
      }
      line_len = 0;
      line_too_long = false;
    } else if (line_len < MAX_LINE_BYTES - 1) {
      line_buf[line_len++] = (char)c;
    } else {
      line_too_long = true;  // keep the first characters for the !ERR reply
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Timers (BoardState.tick): pulse ends, max on-time and duty cuts, host-silence watchdog.

static void runTimers(uint32_t now_us) {
  for (uint8_t ch = 0; ch < N_CHANNELS; ++ch) {
    Channel &c = channels[ch];
    // Keep every stored time younger than the 71.6-minute micros() wrap (changes no decision:
    // an off older than MAX_TIME_MS is past any minimum off-time).
    dutyAdvance(c, now_us);
    if (c.off_recent && (uint32_t)(now_us - c.off_us) >= MAX_TIME_MS * 1000UL) {
      c.off_recent = false;
    }
    if (c.on && (uint32_t)(now_us - c.on_start_us) >= c.on_duration_us) {
      switchOff(ch, now_us);
      if (c.cause == CAUSE_MAX_ON || c.cause == CAUSE_DUTY) {
        Reply r;
        replyBegin(r);
        replyStr(r, "X ");
        replyUint(r, ch);
        replyStr(r, (c.cause == CAUSE_MAX_ON) ? " MAX" : " DUTY");
        replySend(r);
      }
    }
  }
  if (watchdog_ms > 0 && !watchdog_tripped &&
      (uint32_t)(now_us - last_rx_us) >= watchdog_ms * 1000UL) {
    watchdog_tripped = true;
    if (allOff(now_us)) {
      Reply r;
      replyBegin(r);
      replyStr(r, "X * WDG");
      replySend(r);
    }
  }
}

// ----------------------------------------------------------------------------------------------

void setup() {
  for (uint8_t ch = 0; ch < N_CHANNELS; ++ch) {
    drive(ch, false);  // level first, then direction: no glitch at boot
    pinMode(OUTPUT_PINS[ch], OUTPUT);
    channels[ch].on = false;
    channels[ch].on_start_us = 0;
    channels[ch].on_duration_us = 0;
    channels[ch].max_on_us = DEFAULT_MAX_ON_MS * 1000UL;
    channels[ch].cause = CAUSE_PULSE_END;
    channels[ch].min_off_us = 0;  // no minimum off-time and no duty limit until R / D
    channels[ch].off_recent = false;
    channels[ch].duty_on_us = 0;
    channels[ch].duty_window_us = 0;
    channels[ch].duty_bounded = false;
  }
  Serial.begin(BAUD_RATE);
  last_rx_us = micros();
  replyBanner(false, 0);
}

void loop() {
  runTimers(micros());  // timers that fell due before these bytes arrived act first
  readSerial();
}

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
//     W <ms> [seq]        host-silence watchdog timeout, 0 = off (default 1000 ms)
//     K [seq]             heartbeat (any byte feeds the watchdog; K exists for idle hosts)
//     C <0|1> [seq]       acknowledgements off/on (A <seq|-> <op> after each command)
//     V [seq]             version    -> V RPIO 1 <channels> [seq]
//   Board -> host, unsolicited:
//     V RPIO 1 <channels>   at boot
//     X <ch> MAX            the board cut <ch> at its maximum on-time
//     X * WDG               the watchdog fired and switched outputs off
//     !ERR <CODE> <line>    a refused line: CMD, ARG, CH, RANGE or LONG, then its first 24 chars
//
// Design rules: nothing blocks. No delay(), no String, no heap; timers are micros() differences
// in uint32 arithmetic (correct across the 71.6-minute wrap because every duration is shorter
// than that: MAX_TIME_MS is 60 minutes). The maximum on-time and the watchdog run on the board,
// so an output goes off even when the host process dies, the cable is pulled or the PC hangs.
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

static const uint8_t N_CHANNELS = sizeof(OUTPUT_PINS) / sizeof(OUTPUT_PINS[0]);

enum OffCause : uint8_t { CAUSE_PULSE_END = 0, CAUSE_MAX_ON = 1 };

struct Channel {
  bool on;
  uint32_t on_start_us;     // when the current on-period (or its last P/H/M) started
  uint32_t on_duration_us;  // off when micros() - on_start_us >= on_duration_us
  uint32_t max_on_us;
  uint32_t edge_us;         // when the channel last went from off to on (max on-time origin)
  OffCause cause;           // why the pending off will happen
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
// Channel state changes (BoardState._switch_on / L / _all_off).

// Time left before the max on-time, counted from the off->on edge (0 when already reached).
static uint32_t allowedUs(const Channel &c, uint32_t now_us) {
  uint32_t since_edge = now_us - c.edge_us;
  return (since_edge < c.max_on_us) ? c.max_on_us - since_edge : 0;
}

// On for duration_us from now, never past the max on-time counted from the off->on edge, so a
// host re-sending H or P cannot keep an output on beyond its limit.
static void switchOn(uint8_t ch, uint32_t now_us, uint32_t duration_us, OffCause cause) {
  Channel &c = channels[ch];
  if (!c.on) c.edge_us = now_us;
  uint32_t allowed = allowedUs(c, now_us);
  if (duration_us >= allowed) {
    duration_us = allowed;
    cause = CAUSE_MAX_ON;
  }
  drive(ch, true);
  c.on = true;
  c.on_start_us = now_us;
  c.on_duration_us = duration_us;
  c.cause = cause;
}

static void switchOff(uint8_t ch) {
  drive(ch, false);
  channels[ch].on = false;
}

// Returns whether any channel was on.
static bool allOff() {
  bool any = false;
  for (uint8_t ch = 0; ch < N_CHANNELS; ++ch) {
    if (channels[ch].on) any = true;
    switchOff(ch);
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

  // No command takes more than 4 fields; a 5th only makes the line an ARG error (after the
  // command letter is checked, as the reference does).
  char *tokens[5];
  uint8_t n_tokens = 0;
  char *p = line;
  while (*p) {
    while (*p && isSpace(*p)) *p++ = '\0';
    if (!*p) break;
    if (n_tokens < 5) tokens[n_tokens++] = p;
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
  char time_kind = 0;  // 'm': <ms>, 'i': integer (W, C)
  switch (op) {
    case 'P': needs_channel = true; time_kind = 'm'; break;
    case 'H': case 'L': case 'Q': needs_channel = true; break;
    case 'M': needs_channel = true; time_kind = 'm'; break;
    case 'W': case 'C': time_kind = 'i'; break;
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

  uint8_t n_required = (needs_channel ? 1 : 0) + (time_kind ? 1 : 0);
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
  uint32_t time_us = 0;
  uint32_t value = 0;
  if (time_kind == 'm') {
    const char *err = parseMsToUs(args[i], &time_us);
    if (err) {
      replyError(err, original);
      return;
    }
    if (time_us == 0) {
      replyError("RANGE", original);
      return;
    }
    ++i;
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

  Channel &c = channels[ch];
  switch (op) {
    case 'P':
      switchOn(ch, now_us, time_us, CAUSE_PULSE_END);
      break;
    case 'H':
      switchOn(ch, now_us, c.max_on_us, CAUSE_MAX_ON);
      break;
    case 'L':
      switchOff(ch);
      break;
    case 'Z':
      allOff();
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
// Timers (BoardState.tick): pulse ends, max on-time cuts, host-silence watchdog.

static void runTimers(uint32_t now_us) {
  for (uint8_t ch = 0; ch < N_CHANNELS; ++ch) {
    Channel &c = channels[ch];
    if (c.on && (uint32_t)(now_us - c.on_start_us) >= c.on_duration_us) {
      switchOff(ch);
      if (c.cause == CAUSE_MAX_ON) {
        Reply r;
        replyBegin(r);
        replyStr(r, "X ");
        replyUint(r, ch);
        replyStr(r, " MAX");
        replySend(r);
      }
    }
  }
  if (watchdog_ms > 0 && !watchdog_tripped &&
      (uint32_t)(now_us - last_rx_us) >= watchdog_ms * 1000UL) {
    watchdog_tripped = true;
    if (allOff()) {
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
  }
  Serial.begin(BAUD_RATE);
  last_rx_us = micros();
  replyBanner(false, 0);
}

void loop() {
  runTimers(micros());  // timers that fell due before these bytes arrived act first
  readSerial();
}

// A minimal stand-in for the Arduino core, so realtime_pose_io.ino compiles and runs on a PC.
// Time is set by the harness (g_now_us); digitalWrite records level changes; Serial is a pair
// of in-memory buffers. Only what the sketch uses is provided.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>

#define HIGH 1
#define LOW 0
#define OUTPUT 1

extern uint32_t g_now_us;
inline uint32_t micros() { return g_now_us; }
inline uint32_t millis() { return g_now_us / 1000UL; }

void digitalWrite(uint8_t pin, uint8_t level);
inline void pinMode(uint8_t, uint8_t) {}
// Teensyduino's extras, so the sketch's TEENSYDUINO branch compiles and runs here too.
inline void digitalWriteFast(uint8_t pin, uint8_t level) { digitalWrite(pin, level); }

class FakeSerial {
 public:
  std::string input;
  size_t input_pos = 0;
  std::string output;
  int tx_room = 4096;

  void begin(uint32_t) {}
  int available() { return static_cast<int>(input.size() - input_pos); }
  int read() { return input_pos < input.size() ? static_cast<uint8_t>(input[input_pos++]) : -1; }
  int availableForWrite() { return tx_room; }
  size_t write(const uint8_t *buf, size_t len) {
    output.append(reinterpret_cast<const char *>(buf), len);
    return len;
  }
  void send_now() {}
};

extern FakeSerial Serial;

// Runs realtime_pose_io.ino on a PC. stdin, one step per line:
//   "<t_us> <text>"  at time t_us (uint64, wrapped to 32 bits for micros()), feed text + '\n'
//   "<t_us>"         at time t_us, only run loop()
//   "<t_us> ~<n>"    at time t_us, feed n bytes of 'x' + '\n' (long-line test)
// stdout: one line per event, in order, and "." after the boot output and after each step:
//   "O <t_us> <line>"   a line the sketch wrote to Serial
//   "D <t_us> <pin> <level>"   an output pin changed level
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "Arduino.h"

uint32_t g_now_us = 0;
static uint64_t g_now_full_us = 0;
FakeSerial Serial;
static std::map<int, int> g_levels;
static bool g_started = false;

void digitalWrite(uint8_t pin, uint8_t level) {
  auto it = g_levels.find(pin);
  if (it != g_levels.end() && it->second == level) return;
  g_levels[pin] = level;
  if (g_started) std::cout << "D " << g_now_full_us << " " << int(pin) << " " << int(level) << "\n";
}

#include "../../../hardware/firmware/realtime_pose_io/realtime_pose_io.ino"

static void flushSerial() {
  size_t start = 0, nl;
  while ((nl = Serial.output.find('\n', start)) != std::string::npos) {
    std::cout << "O " << g_now_full_us << " " << Serial.output.substr(start, nl - start) << "\n";
    start = nl + 1;
  }
  Serial.output.erase(0, start);
}

int main(int argc, char **argv) {
  uint64_t t0 = argc > 1 ? std::stoull(argv[1]) : 0;
  g_now_full_us = t0;
  g_now_us = static_cast<uint32_t>(t0);
  setup();
  g_started = true;
  flushSerial();
  std::cout << "." << std::endl;  // end of boot
  std::string step;
  while (std::getline(std::cin, step)) {
    std::istringstream in(step);
    uint64_t t;
    in >> t;
    g_now_full_us = t;
    g_now_us = static_cast<uint32_t>(t);
    std::string rest;
    if (in.peek() == ' ') {
      in.get();
      std::getline(in, rest);
      if (!rest.empty() && rest[0] == '~') {
        rest = std::string(std::stoul(rest.substr(1)), 'x');
      }
      Serial.input.append(rest);
      Serial.input.push_back('\n');
    }
    do {
      loop();
      flushSerial();
    } while (Serial.available() > 0);
    loop();  // the timers once more, after the step's lines (the board loops continuously)
    flushSerial();
    std::cout << "." << std::endl;  // end of step
  }
  return 0;
}

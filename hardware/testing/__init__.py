"""Stand-ins for output boards, for tests, benchmarks and bench checks of real boards.

- :mod:`~realtime_pose.hardware.testing.loopback`: pty pairs and a timestamping far end
  (a "board" that only listens).
- :mod:`~realtime_pose.hardware.testing.far_end`: the one line-stamping reader, on a thread or
  in a process of its own.
- :mod:`~realtime_pose.hardware.testing.emulator`: the board's protocol state machine on a pty
  (``python -m realtime_pose.hardware.testing.emulator``).
- :mod:`~realtime_pose.hardware.testing.board_check`: the conformance check for a flashed board
  (``python -m realtime_pose.hardware.testing.board_check PORT``).
"""

"""realtime-pose: closed-loop, low-latency animal pose estimation.

``import realtime_pose`` stays light: no TensorFlow, no GPU libraries, no engine start-up.
"""

__version__ = "0.1.0"

"""What every machine-vision camera source shares: camera time on the host clock
(:mod:`~realtime_pose.cameras.clock`), drops counted from the camera's own frame ids and buffer
states (:mod:`~realtime_pose.cameras.drops`), options checked against the camera's GenICam limits
(:mod:`~realtime_pose.cameras.limits`), pixel formats to BGR (:mod:`~realtime_pose.cameras.pixels`)
and the common options and frame assembly (:mod:`~realtime_pose.cameras.common`).

The camera plug-ins themselves are one file each in :mod:`realtime_pose.sources` (``basler``,
``aravis``, ``genicam``); none of these modules imports a camera SDK.
"""

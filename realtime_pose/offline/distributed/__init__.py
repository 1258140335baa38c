"""Offline analysis spread over many processes and machines with Ray.

A video is cut into chunks of frames (:mod:`.chunks`); long-lived workers, one Ray actor per
worker with the model loaded once (:mod:`.worker`), analyse chunks as they become free
(:mod:`.dispatch`); the chunks of a video are checked at every boundary and merged into one
pose array, which :mod:`realtime_pose.formats.pose_files` writes exactly as a sequential run would.
:mod:`.cluster` starts Ray on this machine (loopback only) or joins an existing cluster.

Ray is an optional dependency (``pip install 'realtime-pose[cluster]'``): nothing here imports
it at module level, and ``import realtime_pose`` never loads it.
"""

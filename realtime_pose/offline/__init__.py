"""Work on recorded video and on the engine, away from the live loop.

:mod:`.analysis` (one video through the estimator), :mod:`.batch` (planning many videos, on one
machine or on Ray through :mod:`.distributed`), :mod:`.capture` (an analysed video's doubtful
frames into DeepLabCut labeled-data, ``analyze --capture``), :mod:`.camera_set` (a camera
group's videos → 3D), :mod:`.calibrate` (a rig's calibration from ChArUco views),
:mod:`.latency_benchmark` (the per-frame path, DeepLabCut-Live's benchmark counterpart),
:mod:`.tuning` (which engine is fastest here), :mod:`.precision` (whether a reduced precision
keeps the bundle's accuracy) and :mod:`.plots`.
"""

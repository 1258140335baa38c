"""Work on recorded video and on the engine, away from the live loop.

:mod:`.analysis` (one video through the estimator), :mod:`.batch` (planning many videos, on one
machine or on Ray through :mod:`.distributed`), :mod:`.latency_benchmark` (the per-frame path,
DeepLabCut-Live's benchmark counterpart), :mod:`.tuning` (which engine is fastest here),
:mod:`.precision` (whether a reduced precision keeps the bundle's accuracy) and :mod:`.plots`.
"""

"""The live session: one camera's frames through the network to the rules, outputs, stream and
recording, with nothing queued.

:mod:`.session` assembles a session from a run config (:mod:`.run_config`) and owns its lifecycle;
:mod:`.requests` answers the control socket's and the live view's requests; :mod:`.grabber` reads
the source into a one-slot mailbox; :mod:`.pipeline` is the loop thread (preprocess, engine, peaks,
prediction, processors, rules, publish); :mod:`.processors` runs user code on each pose;
:mod:`.affinity` keeps the loop's CPUs apart from every other thread's; :mod:`.garbage` keeps
Python's collections between frames. A camera group: :mod:`.frame_sets` assembles its frames
into sets and :mod:`.multiview` is its loop (2D views → triangulation → 3D rules).
:mod:`.model_swap` puts another model into the running loop between two frames.
:mod:`.capture` keeps the frames the model is unsure of as DeepLabCut labeled-data, and
:mod:`.capture_plan` opens it from the ``capture:`` section (live, and for ``analyze
--capture``). Two self-checks run the same parts: :mod:`.latency_selftest` (frame to byte at an
emulated board) and :mod:`.camera_report` (grab N frames from a camera as the loop does).
"""

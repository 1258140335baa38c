"""A frame becomes keypoints: pure kernels and the one object that chains them.

:mod:`.estimator` (preprocess, one engine call, peaks, back to frame pixels), :mod:`.crop` (the
dynamic crop window), :mod:`.peaks` (Numba peak finding and location refinement),
:mod:`.predict` (Kalman forward prediction, 2D or 3D), :mod:`.tracking` (which animal is which
across frames), :mod:`.triangulate` (a camera group's 2D poses → 3D, Numba DLT with
outlier-view rejection) and :mod:`.doubt` (which poses the model is unsure of, for capturing
their frames). Nothing here opens a socket, a file or a thread.
"""

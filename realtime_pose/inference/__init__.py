"""A frame becomes keypoints: pure kernels and the one object that chains them.

:mod:`.estimator` (preprocess, one engine call, peaks, back to frame pixels), :mod:`.crop` (the
dynamic crop window), :mod:`.peaks` (Numba peak finding and location refinement),
:mod:`.predict` (Kalman forward prediction) and :mod:`.tracking` (which animal is which across
frames). Nothing here opens a socket, a file or a thread.
"""

"""The live view: a page any browser on the rig opens to see and drive a running session.

- :mod:`.preview` (in the session): a frame tap that JPEG-encodes the newest frame off the loop
  thread and publishes it, with its pose, on the stream's ``frame`` topic (docs/protocol.md).
- :mod:`.server` (the ``view`` extra, aiohttp): subscribes to a session's stream, serves the
  page and its WebSocket, and forwards the page's actions to the session's control socket.
  ``realtime-pose view --stream ADDRESS`` runs it on its own; a session with ``view.enabled``
  starts it as a child process (:mod:`.process`), so the browser's work never shares the
  loop's interpreter.
- :mod:`.frame_tap`: the one-slot, never-blocking hand-off of the newest frame to the preview.
- :mod:`.labelling` (the ``view`` extra): the labelling page, to correct captured frames in the
  browser, on its own (``realtime-pose label FOLDER``) or beside the live page.
- :mod:`.access`: who may open the pages (loopback by default; a token beyond it), and
  :mod:`.guard`: the one check that applies those rules to the live and the labelling pages;
  :mod:`.tls`: the rig's certificate beyond loopback.
- :mod:`.browser`: headless Chromium for the view's tests and benchmarks.
- ``static/``: the page, plain ES modules, with uPlot vendored for the plots.

Nothing here is imported by ``import realtime_pose``; aiohttp is imported only by the server,
the labelling page and the guard.
"""

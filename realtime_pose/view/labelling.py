"""The labelling page: correct the frames a session captured, in the browser.

One ``labeled-data/<video>/`` folder (:mod:`realtime_pose.formats.collected_data`) is served
under ``/label/``:

- ``GET /label/``: the page (``static/label.html``, ``static/js/label.js``);
- ``GET /label/api/frames``: the keypoints, the scorer, and each frame (image name, frame
  index, labelled or not, why it was captured when ``captures.json`` says);
- ``GET /label/api/frame/<image>``: the PNG, only for a name the folder's listing holds;
- ``GET /label/api/labels/<image>``: its human labels, else the machine's guess with likelihood;
- ``POST /label/api/labels``: ``{"labels": {image: [[x, y] | null per keypoint]},
  "overwrite": false}`` (the images may also be the body's top-level keys) merges the frames
  the user finished into ``CollectedData_<scorer>``; 409 with the frames when that would replace
  different saved labels, unless ``overwrite`` is true.

Two ways to serve it: on its own (:class:`LabellingServer`, ``realtime-pose label FOLDER``),
or beside the live page (``ViewServer(..., label_folder=...)`` adds the same routes behind the
view's own guard). Either way the access rules are the live view's (:mod:`.access`): loopback
by default, TLS and the token beyond it; and a POST must be JSON (a cross-site form cannot
send it without a CORS preflight, which is never granted) from the page's own origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from realtime_pose.formats.collected_data import (
    FolderLabels,
    LabelConflictError,
    capture_reasons,
    check_scorer_name,
    frame_index,
    list_images,
    read_folder_labels,
    resolve_scorer,
    save_collected_data,
)
from realtime_pose.view import access
from realtime_pose.view.guard import STATIC, PageSite
from realtime_pose.view.tls import TlsFiles

log = logging.getLogger(__name__)

PREFIX = "/label"
MAX_BODY_BYTES = 4 << 20
"""The largest labels POST accepted (thousands of frames of dozens of keypoints)."""
IMAGE_NAME = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]*\.png", re.IGNORECASE)
READY_PREFIX = "labelling page: "


class LabellingApp:
    """The labelling routes for one folder (an aiohttp sub-application without a guard of its
    own: whoever mounts it guards it).

    Parameters
    ----------
    folder
        The ``labeled-data/<video>`` folder of PNGs.
    scorer
        Whose labels are saved; ``None``: the project's (:func:`resolve_scorer`), else the one
        the page sends with its first save.
    """

    def __init__(self, folder: str | Path, scorer: str | None = None) -> None:
        self.folder = Path(folder)
        self.scorer = resolve_scorer(self.folder, scorer)
        self._save_lock = asyncio.Lock()

    def app(self) -> web.Application:
        """The sub-application; mount it at :data:`PREFIX` with :func:`add_labelling`."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/api/frames", self._frames)
        app.router.add_get("/api/frame/{image}", self._image)
        app.router.add_get("/api/labels/{image}", self._labels)
        app.router.add_post("/api/labels", self._save)
        return app

    async def _page(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "label.html")

    async def _read(self) -> FolderLabels:
        return await asyncio.to_thread(read_folder_labels, self.folder, self.scorer)

    async def _frames(self, _request: web.Request) -> web.Response:
        try:
            labels = await self._read()
            reasons = await asyncio.to_thread(capture_reasons, self.folder)
        except ValueError as exc:
            return _error(500, str(exc))
        frames = [
            {
                "image": image,
                "frame_index": frame_index(image),
                "state": "labelled" if image in labels.collected else "unlabelled",
                "reasons": reasons.get(image, []),
            }
            for image in labels.images
        ]
        return web.json_response(
            {
                "ok": True,
                "folder": self.folder.name,
                "scorer": labels.scorer,
                "keypoints": labels.keypoint_names,
                "frames": frames,
            }
        )

    def _image_name(self, request: web.Request) -> str | None:
        """The requested image if it is one of the folder's PNGs, exactly as listed (no paths,
        links or hidden files)."""
        image = request.match_info["image"]
        if IMAGE_NAME.fullmatch(image) and image in list_images(self.folder):
            return image
        return None

    async def _image(self, request: web.Request) -> web.StreamResponse:
        image = self._image_name(request)
        if image is None:
            return _error(404, f"no frame {request.match_info['image']!r} in this folder")
        return web.FileResponse(self.folder / image)

    async def _labels(self, request: web.Request) -> web.Response:
        image = self._image_name(request)
        if image is None:
            return _error(404, f"no frame {request.match_info['image']!r} in this folder")
        try:
            labels = await self._read()
        except ValueError as exc:
            return _error(500, str(exc))
        points, likelihood, source = labels.starting_point(image)
        return web.json_response(
            {
                "ok": True,
                "image": image,
                "state": "labelled" if source == "collected" else "unlabelled",
                "source": source,
                "keypoints": labels.keypoint_names,
                "points": [_point(p) for p in points],
                "likelihood": None if likelihood is None else [_number(v) for v in likelihood],
            }
        )

    async def _save(self, request: web.Request) -> web.Response:
        refused = _refuse_cross_site(request)
        if refused is not None:
            return refused
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(413, f"labels larger than {MAX_BODY_BYTES} bytes; save fewer frames")
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return _error(413, f"labels larger than {MAX_BODY_BYTES} bytes; save fewer frames")
        try:
            labels, overwrite, scorer = _parse_save(body)
            scorer = self.scorer or scorer
            if scorer is None:
                raise ValueError(
                    "no scorer: this folder is not in a DeepLabCut project and has no "
                    "CollectedData file yet; enter your name as the scorer"
                )
            check_scorer_name(scorer)
        except ValueError as exc:
            return _error(400, str(exc))
        async with self._save_lock:
            try:
                current = await asyncio.to_thread(read_folder_labels, self.folder, scorer)
                files = await asyncio.to_thread(
                    save_collected_data,
                    self.folder,
                    scorer,
                    current.bodyparts,
                    {image: [_xy(image, p) for p in points] for image, points in labels.items()},
                    overwrite_existing=overwrite,
                    animals=current.animals,
                )
            except LabelConflictError as exc:
                return _error(
                    409,
                    f"{exc.path.name} already holds different labels for " + ", ".join(exc.images),
                    conflicts=exc.images,
                    hint='send "overwrite": true to replace them',
                )
            except ValueError as exc:
                return _error(400, str(exc))
            except OSError as exc:
                log.exception("labelling: could not save %s", self.folder)
                return _error(500, f"could not write the labels: {exc}")
            self.scorer = scorer
        log.info("labelling: saved %d frame(s) to %s", len(labels), files[0])
        return web.json_response(
            {"ok": True, "saved": sorted(labels), "files": [p.name for p in files]}
        )


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is longer than ``limit`` (whatever it declared)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_save(body: bytes) -> tuple[dict[str, list], bool, str | None]:
    try:
        message = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(message, dict):
        raise ValueError("the body must be a JSON object")
    labels = message.get("labels")
    if labels is None:
        labels = {k: v for k, v in message.items() if k not in ("overwrite", "scorer")}
    overwrite = message.get("overwrite", False)
    scorer = message.get("scorer") or None
    if not isinstance(labels, dict) or not labels:
        raise ValueError("no labels: send {'labels': {image: [[x, y] or null, ...]}}")
    if not isinstance(overwrite, bool):
        raise ValueError("'overwrite' must be true or false")
    if scorer is not None and not isinstance(scorer, str):
        raise ValueError("'scorer' must be a name")
    for image, points in labels.items():
        if not isinstance(points, list):
            raise ValueError(f"labels of {image}: expected a list of [x, y] or null")
    return labels, overwrite, scorer


def _xy(image: str, point: Any) -> tuple[float, float]:
    """``[x, y]`` as floats, ``None`` as NaN (not visible)."""
    if point is None:
        return (math.nan, math.nan)
    if (
        isinstance(point, list)
        and len(point) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
        and all(math.isfinite(v) for v in point)
    ):
        return (float(point[0]), float(point[1]))
    raise ValueError(f"labels of {image}: {point!r} is not [x, y] or null")


def _number(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _point(p) -> list[float] | None:
    x, y = _number(p[0]), _number(p[1])
    return None if x is None or y is None else [x, y]


def _error(status: int, text: str, **fields: Any) -> web.Response:
    return web.json_response({"ok": False, "error": text, **fields}, status=status)


def _refuse_cross_site(request: web.Request) -> web.Response | None:
    """A labels POST must be JSON from the page's own origin."""
    if request.content_type != "application/json":
        return _error(415, "send the labels as application/json")
    origin = request.headers.get("Origin")
    if origin is not None and not access.same_origin(
        origin, request.headers.get("Host"), request.scheme
    ):
        return _error(403, f"labels from another origin ({origin!r}) are refused")
    return None


def add_labelling(app: web.Application, folder: str | Path, scorer: str | None = None) -> None:
    """Mount the labelling page for ``folder`` at ``/label/`` in ``app`` (whose middlewares,
    e.g. the live view's guard, apply to it)."""
    labelling = LabellingApp(folder, scorer)

    async def with_slash(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{PREFIX}/")

    app.router.add_get(PREFIX, with_slash)  # before the sub-app, which would answer 404
    app.add_subapp(f"{PREFIX}/", labelling.app())


class LabellingServer:
    """The labelling page for one folder, served on its own (``realtime-pose label``).

    Parameters
    ----------
    folder
        The ``labeled-data/<video>`` folder; refused (``ValueError``) without PNGs.
    address
        Where to serve (``http://127.0.0.1:8090``; port 0 picks a free one); beyond loopback it
        must be ``https://`` with a strong ``token`` (:func:`access.check_bind`).
    token
        Required by the page beyond loopback (as for the live view).
    tls
        Certificate and key for ``https://`` (``None``: the rig's own).
    scorer
        Whose labels (the project's ``config.yaml`` scorer wins inside a DeepLabCut project).
    """

    def __init__(
        self,
        folder: str | Path,
        address: str = "http://127.0.0.1:8090",
        token: str | None = None,
        tls: TlsFiles | None = None,
        scorer: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"{self.folder}: not a folder; give a labeled-data/<video> folder")
        if not list_images(self.folder):
            raise ValueError(
                f"{self.folder}: no PNG frames to label (expected img00042.png ... as DeepLabCut "
                "extracts them or the session captures them)"
            )
        self.labelling = LabellingApp(self.folder, scorer)
        self.site = PageSite(address, token, tls, "this labelling page")
        self.url: str | None = None

    def app(self) -> web.Application:
        """The application: ``/`` leads to ``/label/``; ``/static`` holds the page's files."""
        app = web.Application(middlewares=[self.site.guard.middleware])

        async def to_page(_request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{PREFIX}/")

        app.router.add_get("/", to_page)
        app.router.add_get(PREFIX, to_page)  # before the sub-app, which would answer 404
        app.router.add_static("/static", STATIC, follow_symlinks=False)
        app.add_subapp(f"{PREFIX}/", self.labelling.app())
        return app

    async def start(self) -> str:
        """Bind; return the page's URL."""
        self.url = f"{await self.site.start(self.app())}{PREFIX.lstrip('/')}/"
        return self.url

    async def close(self) -> None:
        """Stop serving."""
        await self.site.close()


def serve_labelling(
    folder: str | Path,
    address: str = "http://127.0.0.1:8090",
    token: str | None = None,
    tls: TlsFiles | None = None,
    scorer: str | None = None,
) -> None:
    """Serve the labelling page for ``folder`` until SIGINT or SIGTERM; print its URL (a line
    starting :data:`READY_PREFIX`) once it is served.

    Raises
    ------
    ValueError, InsecureBindError
        The folder has no PNGs, the address is wrong, or beyond loopback without TLS and token.
    OSError
        The address cannot be bound.
    """
    import signal

    server = LabellingServer(folder, address, token, tls, scorer)

    async def serve() -> None:
        url = await server.start()
        print(f"{READY_PREFIX}{url}", flush=True)
        log.info("labelling %s on %s (scorer %s)", server.folder, url, server.labelling.scorer)
        if server.site.address.tls and server.site.tls is not None:
            log.info("TLS certificate SHA-256 fingerprint %s", server.site.tls.fingerprint())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C still ends it
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(serve())

"""The live view's server: a session's stream in, the page and its WebSocket out.

It subscribes to a session's stream (``frame``, ``status``, ``event``, ``meta``; not every
``pose``: each preview carries the pose estimated on its own frame), serves the page in
``static/``, and forwards the page's actions to the session's control socket. It is the same
whether the session runs in the parent process (``view.enabled``) or on another computer
(``realtime-pose view --stream tcp://HOST:5555``).

Every browser gets its own sender with a one-slot mailbox for frames: a newer frame replaces one
not sent yet, and at most :data:`FRAMES_IN_FLIGHT` frames are sent ahead of the page's "drawn"
reports, so a browser that draws slowly gets fewer frames and one that stops reading gets none,
while the others (and the session) go on. Those reports give the capture → drawn latency.

Needs aiohttp (the ``view`` extra); nothing imports this module unless the view runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import math
import struct
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from aiohttp import WSMsgType, web

from realtime_pose.stream import messages
from realtime_pose.stream.control import ControlClient, ControlTimeoutError
from realtime_pose.stream.security import CurveClientKeys, is_loopback, wants_ipv6
from realtime_pose.util.stats import Summary
from realtime_pose.view.guard import STATIC, PageSite
from realtime_pose.view.tls import TlsFiles

log = logging.getLogger(__name__)

FRAMES_IN_FLIGHT = 2
"""Frames sent to a browser ahead of its "drawn" reports."""
HISTORY_S = 60
"""Seconds of status kept for the plots of a page that opens."""
EVENTS_KEPT = 300
TEXT_QUEUE = 256
"""Text messages queued for a browser before the oldest are dropped."""
ACTIONS = frozenset(
    {
        "rules",
        "zone_set",
        "rules_save",
        "output_test",
        "snapshot",
        "record_start",
        "record_stop",
        "rule_enable",
        "rule_disable",
        "model_swap",
    }
)
"""Control commands the page may send."""
REFRESH_RULES = frozenset({"zone_set", "rule_enable", "rule_disable"})


def frame_message(header: dict[str, Any], jpeg: bytes) -> bytes:
    """A binary WebSocket message: 4-byte big-endian header length, UTF-8 JSON, JPEG."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + jpeg


def _json_safe(value: Any) -> Any:
    """NaN (a keypoint not found) as ``null``: JSON has no NaN."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


class Browser:
    """One connected page: its WebSocket, frame mailbox, text queue and drawn reports."""

    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse, remote: str | None) -> None:
        self.id = next(self._ids)
        self.ws = ws
        self.remote = remote
        self.frame: tuple[int, bytes] | None = None
        self.texts: collections.deque[str] = collections.deque(maxlen=TEXT_QUEUE)
        self.wake = asyncio.Event()
        self.in_flight: dict[int, int] = {}
        self.sent = 0
        self.replaced = 0
        self.drawn = 0
        self.drawn_t: collections.deque[float] = collections.deque(maxlen=600)
        self.latency_ns: collections.deque[int] = collections.deque(maxlen=5000)

    def offer_frame(self, seq: int, data: bytes) -> None:
        if self.frame is not None:
            self.replaced += 1
        self.frame = (seq, data)
        self.wake.set()

    def offer_text(self, text: str) -> None:
        self.texts.append(text)
        self.wake.set()

    def stats(self) -> dict[str, Any]:
        now = time.monotonic()
        recent = [t for t in self.drawn_t if now - t <= 5.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        s = Summary.of(list(self.latency_ns), "ms", 3)
        return {
            "id": self.id,
            "remote": self.remote,
            "sent": self.sent,
            "replaced": self.replaced,
            "drawn": self.drawn,
            "drawn_fps": round(fps, 2),
            "capture_to_drawn_ms": {"p50": s.p50, "p99": s.p99, "max": s.max, "n": s.n},
        }


class ViewServer:
    """Serve the live page for the session whose stream is at ``stream_address``.

    Parameters
    ----------
    stream_address
        The session's stream (``tcp://HOST:5555``).
    control_address
        Its control socket (``None``: a view that only watches; actions are refused).
    address
        Where to serve (``http://127.0.0.1:8080``; port 0 picks a free one).
    token
        The session token: required by the page beyond loopback (and by the control socket
        when the session has one).
    curve
        CURVE client keys when the session's stream and control socket use CURVE.
    tls
        Certificate and key for an ``https://`` address (``None``: one made for the rig,
        :func:`realtime_pose.view.tls.rig_certificate`).
    label_folder
        A ``labeled-data/<video>`` folder of captured frames: the labelling page for it is
        served at ``/label/`` behind the same guard (:mod:`realtime_pose.view.labelling`).
    """

    def __init__(
        self,
        stream_address: str,
        control_address: str | None,
        address: str = "http://127.0.0.1:8080",
        token: str | None = None,
        curve: CurveClientKeys | None = None,
        tls: TlsFiles | None = None,
        label_folder: Path | None = None,
    ) -> None:
        self.stream_address = stream_address
        self.label_folder = Path(label_folder) if label_folder is not None else None
        self.control_address = control_address
        self.site = PageSite(address, token, tls, "this live view")
        self.token = token
        self.curve = curve
        self.same_host = is_loopback(stream_address)
        self.meta: dict[str, Any] | None = None
        self.rules: dict[str, Any] | None = None
        self.status_history: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=HISTORY_S * 4
        )
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        self.browsers: dict[int, Browser] = {}
        self.frames_received = 0
        self.frame_times: dict[int, int] = {}  # seq -> t_capture_ns of recent frames
        self.t_last_status = 0.0
        self._control: ControlClient | None = None
        self._control_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self.url: str | None = None

    # -- the app ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application (routes and the access guard)."""
        app = web.Application(middlewares=[self.site.guard.middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_static("/static", STATIC, follow_symlinks=False)
        if self.label_folder is not None:
            from realtime_pose.view.labelling import add_labelling  # aiohttp pages only

            add_labelling(app, self.label_folder)
        return app

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _api_state(self, _request: web.Request) -> web.Response:
        return web.json_response(_json_safe(self.state()))

    def state(self) -> dict[str, Any]:
        """What the view knows now, and each browser's drawn-frame figures."""
        return {
            "stream": self.stream_address,
            "control": self.control_address,
            "meta": self.meta,
            "rules": self.rules,
            "status": self.status_history[-1] if self.status_history else None,
            "frames_received": self.frames_received,
            "browsers": [b.stats() for b in self.browsers.values()],
        }

    # -- browsers ---------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        browser = Browser(ws, request.remote)
        self.browsers[browser.id] = browser
        log.info("browser %d connected from %s", browser.id, request.remote)
        sender: asyncio.Task | None = None
        try:
            for message in self._welcome():
                browser.offer_text(message)
            sender = asyncio.create_task(self._send_to(browser))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._from_browser(browser, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            # unregistered first, however the connection ended: what follows may raise
            self.browsers.pop(browser.id, None)
            if sender is not None:
                sender.cancel()
                # a sender blocked on a socket that was reset ends with ConnectionError: that
                # is how this browser left, not a fault of the view
                await asyncio.gather(sender, return_exceptions=True)
            log.info("browser %d left (%d frames drawn)", browser.id, browser.drawn)
        return ws

    def _welcome(self) -> list[str]:
        out = [
            self._text(
                "hello",
                stream=self.stream_address,
                same_host=self.same_host,
                actions=self.control_address is not None,
                labelling=self.label_folder is not None,
            )
        ]
        if self.meta is not None:
            out.append(self._text("meta", meta=self.meta))
        if self.rules is not None:
            out.append(self._text("rules", rules=self.rules))
        out.append(
            self._text("history", status=list(self.status_history), events=list(self.events))
        )
        return out

    @staticmethod
    def _text(kind: str, **fields: Any) -> str:
        return json.dumps(_json_safe({"type": kind, **fields}), separators=(",", ":"))

    def _broadcast_text(self, text: str) -> None:
        for browser in list(self.browsers.values()):
            browser.offer_text(text)

    async def _send_to(self, browser: Browser) -> None:
        """Send a browser its text messages, then the newest frame while the window allows.
        A browser that stops reading blocks only this task."""
        ws = browser.ws
        while not ws.closed:
            await browser.wake.wait()
            browser.wake.clear()
            while browser.texts:
                await ws.send_str(browser.texts.popleft())
            if browser.frame is not None and len(browser.in_flight) < FRAMES_IN_FLIGHT:
                (seq, data), browser.frame = browser.frame, None
                browser.in_flight[seq] = time.monotonic_ns()
                await ws.send_bytes(data)
                browser.sent += 1

    async def _from_browser(self, browser: Browser, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "drawn":
            self._drawn(browser, msg.get("seq"))
        elif kind == "action":
            reply = await self._action(msg)
            browser.offer_text(self._text("reply", id=msg.get("id"), reply=reply))

    def _drawn(self, browser: Browser, seq: Any) -> None:
        if not isinstance(seq, int):
            return
        browser.in_flight.pop(seq, None)
        for old in [s for s in browser.in_flight if s < seq]:
            browser.in_flight.pop(old)  # dropped by the page: free the window
        t_capture = self.frame_times.get(seq)
        if t_capture is not None:
            browser.drawn += 1
            browser.drawn_t.append(time.monotonic())
            browser.latency_ns.append(self._now_ns() - t_capture)
        if browser.frame is not None:
            browser.wake.set()

    def _now_ns(self) -> int:
        """Now on the session's clock: its monotonic clock on the same host, else wall time
        less its wall offset (as good as the two computers' clock sync)."""
        if self.same_host or self.meta is None:
            return time.monotonic_ns()
        return time.time_ns() - int(self.meta.get("wall_offset_ns", 0))

    # -- actions ----------------------------------------------------------------------------
    async def _action(self, msg: dict[str, Any]) -> dict[str, Any]:
        cmd = msg.get("cmd")
        if cmd not in ACTIONS:
            return {"ok": False, "error": f"the page may not send {cmd!r}"}
        fields = {k: v for k, v in msg.items() if k not in ("type", "id", "cmd", "token")}
        reply = await self.request(cmd, **fields)
        if reply.get("ok") and cmd in REFRESH_RULES:
            await self.refresh_rules()
        return reply

    async def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """One control request to the session (off the event loop); failures become
        ``{"ok": false, "error": ...}``."""
        if self.control_address is None:
            return {"ok": False, "error": "this view has no control address: it only watches"}
        async with self._control_lock:
            try:
                if self._control is None:
                    self._control = ControlClient(
                        self.control_address, timeout_ms=3000, token=self.token, curve=self.curve
                    )
                return await asyncio.to_thread(self._control.request, cmd, **fields)
            except (ControlTimeoutError, zmq.ZMQError, ValueError) as exc:
                return {"ok": False, "error": str(exc)}

    async def refresh_rules(self) -> None:
        """Fetch the rules and zones from the session and send them to every page."""
        reply = await self.request("rules")
        if reply.get("ok"):
            self.rules = {k: v for k, v in reply.items() if k not in ("ok", "v", "id")}
            self._broadcast_text(self._text("rules", rules=self.rules))

    # -- the stream -------------------------------------------------------------------------
    async def _read_stream(self) -> None:
        ctx = zmq.asyncio.Context.instance()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = 16
        sub.ipv6 = wants_ipv6(self.stream_address)
        if self.curve is not None:
            self.curve.apply(sub)
        for topic in (
            messages.TOPIC_FRAME,
            messages.TOPIC_STATUS,
            messages.TOPIC_EVENT,
            messages.TOPIC_META,
        ):
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        sub.connect(self.stream_address)
        try:
            while True:
                topic, payload = await sub.recv_multipart()
                try:
                    self._on_message(topic, messages.decode(payload))
                except Exception:  # one bad message must not end the view
                    log.exception("could not use a %r message", topic)
        finally:
            sub.close()

    def _on_message(self, topic: bytes, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        if topic == messages.TOPIC_FRAME:
            self._on_frame(msg)
        elif topic == messages.TOPIC_STATUS:
            self.t_last_status = time.monotonic()
            self.status_history.append(msg)
            self._broadcast_text(self._text("status", status=msg))
        elif topic == messages.TOPIC_EVENT:
            self.events.append(msg)
            self._broadcast_text(self._text("event", event=msg))
        elif topic == messages.TOPIC_META:
            self.meta = msg
            self._broadcast_text(self._text("meta", meta=msg))

    def _on_frame(self, msg: dict[str, Any]) -> None:
        self.frames_received += 1
        seq = int(msg["seq"])
        t_capture = int(msg["t_capture_ns"])
        self.frame_times[seq] = t_capture
        if len(self.frame_times) > 256:
            for old in sorted(self.frame_times)[:-128]:
                del self.frame_times[old]
        if not self.browsers:
            return
        header = {
            "type": "frame",
            "seq": seq,
            "frame_index": msg["frame_index"],
            "width": msg["width"],
            "height": msg["height"],
            "age_ms": round((self._now_ns() - t_capture) / 1e6, 2),
            "keypoints": msg["keypoints"],
            "predicted": msg.get("predicted"),
        }
        data = frame_message(_json_safe(header), msg["jpeg"])
        for browser in list(self.browsers.values()):
            browser.offer_frame(seq, data)

    async def _keep_session_info(self) -> None:
        """Meta and rules at start and whenever they are missing; a warning to the pages
        when the session's status stops coming."""
        warned = False
        while True:
            if self.meta is None:
                reply = await self.request("meta")
                if reply.get("ok"):
                    self._on_message(messages.TOPIC_META, reply["meta"])
            if self.rules is None and self.meta is not None:
                await self.refresh_rules()
            silent = time.monotonic() - self.t_last_status
            if self.t_last_status and silent > 3.0 and not warned:
                warned = True
                self._broadcast_text(
                    self._text("warning", text=f"no status from the session for {silent:.0f} s")
                )
            elif silent <= 3.0:
                warned = False
            await asyncio.sleep(1.0)

    # -- running ----------------------------------------------------------------------------
    async def start(self) -> str:
        """Bind, start reading the stream; return the page's URL."""
        self.url = await self.site.start(self.app())
        self._tasks = [
            asyncio.create_task(self._read_stream()),
            asyncio.create_task(self._keep_session_info()),
        ]
        return self.url

    async def close(self) -> None:
        """Stop reading, close every WebSocket and the listener."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for browser in list(self.browsers.values()):
            with contextlib.suppress(Exception):
                await browser.ws.close()
        await self.site.close()
        if self._control is not None:
            self._control.close()

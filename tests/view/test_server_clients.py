"""Every browser the live view's server registers is unregistered however its connection ends:
a clean close, a TCP reset while idle, a reset while the server is blocked sending to it. Real
sockets on loopback, a raw WebSocket handshake, no session needed (the stream is never read)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

import pytest

pytest.importorskip("aiohttp", reason="the live view needs the view extra (aiohttp)")

from realtime_pose.view.server import ViewServer


def _open_websocket(port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # set before connecting: a small window the server fills
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection during the handshake"
        head += chunk
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST, not FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _close_cleanly(sock: socket.socket) -> None:
    mask = os.urandom(4)
    payload = struct.pack(">H", 1000)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + masked)  # a masked close frame
    sock.shutdown(socket.SHUT_WR)
    sock.close()


async def _until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        await asyncio.sleep(0.05)
    return predicate()


async def _connect_then_end(how: str) -> tuple[int, int]:
    server = ViewServer("tcp://127.0.0.1:9", None, "http://127.0.0.1:0")
    url = await server.start()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    try:
        stalled = how == "reset while sending"
        sock = await asyncio.to_thread(_open_websocket, port, 4096 if stalled else None)
        assert await _until(lambda: len(server.browsers) == 1, 5)
        registered = len(server.browsers)
        if stalled:  # the page stops reading: the server's sends block on a full socket
            text = "x" * 100_000
            for _ in range(200):
                server._broadcast_text(text)
                await asyncio.sleep(0.002)
            (browser,) = server.browsers.values()
            assert browser.texts, "the sender should be behind: texts still queued"
        if how == "clean close":
            await asyncio.to_thread(_close_cleanly, sock)
        else:
            _reset(sock)
        await _until(lambda: not server.browsers, 5)
        return registered, len(server.browsers)
    finally:
        await server.close()


@pytest.mark.parametrize("how", ["clean close", "reset while idle", "reset while sending"])
def test_a_browser_is_unregistered_however_its_connection_ends(how):
    registered, left = asyncio.run(_connect_then_end(how))
    assert registered == 1
    assert left == 0, f"a browser stayed registered after a {how}"

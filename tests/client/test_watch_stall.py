"""Stall detection over a real socket: a connection that goes silent is reopened."""

from __future__ import annotations

import socket
import threading

from _client_fake import EXEC_ID, end_frame, event_frame

from kitaru import KitaruClient

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: no-store\r\nconnection: close\r\n\r\n"
)


def _json(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )


class SilentServer:
    """First stream: one event, then silence (no heartbeats). Second: one event and end."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.streams: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/api/v1/info"):
                conn.sendall(_json(b'{"version":"t","streaming":true}'))
            elif path.endswith(b"/events/stream"):
                self.streams.append(head)
                if len(self.streams) == 1:
                    conn.sendall(_HEAD + event_frame(0))
                    self.stop.wait(10)  # silent: no bytes, no heartbeat
                else:
                    conn.sendall(_HEAD + event_frame(1) + end_frame())
            else:
                conn.sendall(_json(f'{{"exec_id":"{EXEC_ID}","status":"running"}}'.encode()))

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_silent_connection_is_detected_by_missed_heartbeats() -> None:
    server = SilentServer()
    try:
        watcher = KitaruClient(server.url).executions.events(
            EXEC_ID, heartbeat_timeout=0.3, backoff_initial=0.01
        )
        assert [e.index for e in watcher] == [0, 1]
        assert len(server.streams) == 2
        assert b"last-event-id: c0" in server.streams[1].lower()
    finally:
        server.close()

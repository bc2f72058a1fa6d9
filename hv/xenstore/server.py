"""xenstored's UNIX socket: every connection privileged, as the tools in
dom0 are on Xen. One thread serves all clients with a selector; requests
are run under the host's lock, so the machine never sees two at once, and
the machine keeps running between them. Watch events that the machine
queues for a socket client wake the thread to send them."""

from __future__ import annotations

import os
import selectors
import socket
import threading
from typing import Callable

from hv.xenstore.connection import Connection
from hv.xenstore.protocol import Message, Parser, ProtocolError

RECV_SIZE = 65536


class _Client:
    __slots__ = ("sock", "conn", "parser", "unsent")

    def __init__(self, sock: socket.socket, conn: Connection):
        self.sock = sock
        self.conn = conn
        self.parser = Parser()
        self.unsent = b""


class XenstoreServer:
    def __init__(self, xenstored, path: str, lock: threading.RLock | None = None):
        self.xenstored = xenstored
        self.path = path
        self.lock = lock or threading.RLock()
        self._sel = selectors.DefaultSelector()
        self._clients: dict[Connection, _Client] = {}
        self._dirty: set[Connection] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = False
        self.faults: list[str] = []
        # Told of every request a client made and its answer, before the
        # answer goes out (a host service journals what changed the store).
        self.on_request: Callable[[int, Message, tuple[int, bytes]], None] | None = None
        self._client_ids: dict[Connection, int] = {}
        self._next_client_id = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "XenstoreServer":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path) and not _socket_alive(self.path):
            os.unlink(self.path)          # left by a process that died
        old = os.umask(0o177)             # owner-only from the moment it exists
        try:
            listener.bind(self.path)
        except OSError:
            # A live daemon holds the path: this server never starts, and
            # keeps none of what it opened.
            listener.close()
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            self._sel.close()
            raise
        finally:
            os.umask(old)
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self._sel.register(listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._serve, name="xenstored-socket", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            for client in list(self._clients.values()):
                self._drop(client)
        if self._listener is not None:
            self._sel.unregister(self._listener)
            self._listener.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._sel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def clients(self) -> int:
        return len(self._clients)

    # ------------------------------------------------------------ the loop
    def _serve(self) -> None:
        while not self._stop:
            for key, mask in self._sel.select(1.0):
                if key.data is None:
                    self._accept()
                elif key.data == "wake":
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:
                    client = key.data
                    try:
                        if mask & selectors.EVENT_READ:
                            self._read(client)
                        if mask & selectors.EVENT_WRITE and not client.conn.closed:
                            self._send(client, b"")
                    except Exception as e:       # noqa: BLE001 - one client, not the daemon
                        # A fault in serving one client costs that client its
                        # connection; the others keep the daemon. Kept for
                        # whoever asks (the tests do: none is expected).
                        self.faults.append(f"{type(e).__name__}: {e}")
                        with self.lock:
                            if client.conn in self._clients:
                                self._drop(client)
            if self._dirty:
                with self.lock:
                    dirty, self._dirty = self._dirty, set()
                    for conn in dirty:
                        client = self._clients.get(conn)
                        if client is not None:
                            self._send(client, conn.take_output())

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        with self.lock:
            conn = self.xenstored.connect("socket", on_output=self._on_output)
            client = _Client(sock, conn)
            self._clients[conn] = client
            self._next_client_id += 1
            self._client_ids[conn] = self._next_client_id
        self._sel.register(sock, selectors.EVENT_READ, client)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        with self.lock:
            if not data:
                self._drop(client)
                return
            try:
                messages = client.parser.feed(data)
            except ProtocolError:
                self._drop(client)
                return
            conn = client.conn
            process = self.xenstored.process
            for msg in messages:
                answer = process(conn, msg)
                if self.on_request is not None:
                    self.on_request(self._client_ids[conn], msg, answer)
                if conn.closed:
                    return
            self._dirty.discard(conn)
            self._send(client, conn.take_output())

    def _send(self, client: _Client, data: bytes) -> None:
        data = client.unsent + data if client.unsent else data
        if not data:
            return
        try:
            sent = client.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(client)
            return
        client.unsent = data[sent:]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.unsent else 0)
        self._sel.modify(client.sock, events, client)

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.conn, None)
        self._client_ids.pop(client.conn, None)
        self.xenstored.disconnect(client.conn)
        try:
            self._sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()

    def _on_output(self, conn: Connection) -> None:
        """Something was queued for a socket client: sent when the thread
        next comes round, woken for it when another thread queued it."""
        self._dirty.add(conn)
        if threading.current_thread() is not self._thread:
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass


def _socket_alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True

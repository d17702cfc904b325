"""A TCP proxy a test starts in front of a real server, to make it fail the way networks do.

* :meth:`TcpProxy.stall` — keep every connection open but forward nothing, either way, and
  leave new connections unanswered: a frozen server, a full disk, a NAT box that lost state.
* :meth:`TcpProxy.stop` — close the listener and every connection: the server is down.
* :meth:`TcpProxy.resume` / :meth:`TcpProxy.start` — back to normal.

Only the proxy is stopped: the machine's own servers keep running for every other test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from tests.support import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._mutex = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stall(self) -> None:
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def stop(self) -> None:
        """Refuse new connections and close the open ones (the server went away)."""
        self._forwarding.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)  # shutdown first: close alone leaves a blocked accept() running
        with self._mutex:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        self._forwarding.wait()  # stalled: the connection is accepted, never answered
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        with self._mutex:
            self._sockets.update((client, upstream))
        self._pump(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                if not self._forwarding.is_set():
                    self._forwarding.wait(0.2)  # stalled: hold the bytes where they are
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()

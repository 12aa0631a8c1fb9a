"""The network between the browser and the test server, as a TCP proxy a test can take down.

Chromium's offline emulation (`BrowserContext.set_offline`) only holds an open localhost
WebSocket's frames until it is back online, losing nothing; a real blip breaks the
connection. `Network.down()` does that: it closes every proxied connection without a
WebSocket close frame (the page sees code 1006) and refuses new ones until it is up again.
"""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit


class Network:
    def __init__(self, server: str) -> None:
        self.server_port = urlsplit(server).port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.up = True
        self.links: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, name="network", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.server_port))
            with self.lock:
                self.links |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._carry, args=(source, sink), daemon=True).start()

    def _carry(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._break(source, sink)

    def _break(self, *ends: socket.socket) -> None:
        for end in ends:
            with self.lock:
                self.links.discard(end)
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    @contextmanager
    def down(self) -> Iterator[None]:
        """Break every connection and refuse new ones until the block ends."""
        self.up = False
        with self.lock:
            links = list(self.links)
        self._break(*links)
        try:
            yield
        finally:
            self.up = True

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        with self.down():
            pass

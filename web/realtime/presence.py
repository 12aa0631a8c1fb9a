"""Open WebSockets per chat, counted across every web process.

Each process keeps its own counts in one Redis hash that expires unless the process keeps
refreshing it, so a crashed process's sockets stop being counted within `TTL_S`.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter

from redis import Redis

log = logging.getLogger(__name__)

PREFIX = "parley:sockets:"
TTL_S = 30


class Presence:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.key = f"{PREFIX}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._refresher: threading.Thread | None = None

    def opened(self, chat_uuid: str) -> None:
        with self._lock:
            self.counts[chat_uuid] += 1
            self._write()
            if self._refresher is None:
                self._refresher = threading.Thread(target=self._refresh, name="presence", daemon=True)
                self._refresher.start()

    def closed(self, chat_uuid: str) -> None:
        with self._lock:
            self.counts[chat_uuid] -= 1
            if self.counts[chat_uuid] <= 0:
                del self.counts[chat_uuid]
            self._write()

    def _write(self) -> None:
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key)
            if self.counts:
                pipe.hset(self.key, mapping=dict(self.counts))
                pipe.expire(self.key, TTL_S)
            pipe.execute()

    def _refresh(self) -> None:
        while True:
            time.sleep(TTL_S / 3)
            try:
                with self._lock:
                    self._write()
            except Exception:
                log.warning("could not refresh socket counts", exc_info=True)


def connections(redis: Redis) -> dict[str, int]:
    """Open sockets per chat UUID, summed over all live web processes."""
    total: Counter[str] = Counter()
    for key in redis.scan_iter(match=f"{PREFIX}*", count=500):
        for chat, count in redis.hgetall(key).items():
            total[chat.decode() if isinstance(chat, bytes) else chat] += int(count)
    return dict(total)

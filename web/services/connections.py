"""How many chat WebSockets and event streams a user holds open at once, across every web process.

Each open connection holds a lease in the user's set (workers.leases), taken when it is accepted
and given back when it ends. The check every open socket and stream already makes each
WS_TOKEN_CHECK_S renews it in the same round trip (web.api.socket_access), so the lease of a
connection whose process died expires after `lease_ttl_s`, about a minute.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from redis import Redis

from models.base import new_uuid
from web.errors import TooManyRequests
from workers import leases, runtime
from workers.settings import Settings

log = logging.getLogger(__name__)

LEASE_TTL_S = 60
RETRY_AFTER_S = 5


def connections_key(user_id: int) -> str:
    return f"parley:connections:{user_id}"


def lease_ttl_s(settings: Settings) -> int:
    """How long a lease outlives its last renewal: a minute, and always a few checks."""
    return max(LEASE_TTL_S, math.ceil(3 * settings.ws_token_check_s))


@dataclass
class ConnectionLease:
    """The place one WebSocket or event stream of `user_id` takes among their open connections."""
    redis: Redis
    user_id: int
    lease_id: str = field(default_factory=new_uuid)

    def take(self) -> None:
        """Take the place; 429 when MAX_CONNECTIONS_PER_USER are open (a socket closes 4429)."""
        settings = runtime.current().settings
        limit = settings.max_connections_per_user
        if not leases.acquire(self.redis, connections_key(self.user_id), self.lease_id, limit=limit,
                              ttl_s=lease_ttl_s(settings)):
            raise TooManyRequests(f"Too many open connections (at most {limit}): close one first",
                                  headers={"Retry-After": str(RETRY_AFTER_S)})

    def renew(self, pipe: Redis) -> None:
        """Queue the lease's renewal on `pipe`."""
        leases.renew(pipe, connections_key(self.user_id), self.lease_id,
                     ttl_s=lease_ttl_s(runtime.current().settings))

    def give_back(self) -> None:
        """Free the place. Redis unreachable leaves the lease to expire: the connection is over anyway."""
        try:
            leases.release(self.redis, connections_key(self.user_id), self.lease_id)
        except Exception:
            log.warning("could not give back the lease of a closed connection", exc_info=True)

"""The HTTP client for a user's own upstream: it connects to public addresses only, follows no redirects.

Kept apart from workers.addresses, which the web tier imports: under gevent's patched
`select`, importing httpcore2 can fail (it probes for trio), and only workers build these.
"""
from __future__ import annotations

import httpcore2
import httpx2

from workers.addresses import public_address


class PublicOnlyBackend(httpcore2.SyncBackend):
    """Connects to the address it resolved and checked, never to a second answer for the name."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore2.NetworkStream:
        return super().connect_tcp(public_address(host), port, timeout, local_address, socket_options)


def public_only_client() -> httpx2.Client:
    """An HTTP client for a user's own upstream: public addresses only, no redirects.

    (TLS still checks the certificate against the URL's host name: httpcore sends it as SNI.)
    """
    transport = httpx2.HTTPTransport(limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100))
    transport._pool._network_backend = PublicOnlyBackend()  # httpx has no parameter for it; tests check it holds
    return httpx2.Client(transport=transport, follow_redirects=False)

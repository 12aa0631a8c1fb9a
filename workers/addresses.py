"""Where a user's own upstream address may point: the public internet, not our network.

A user's `base_url` is an address the workers call with a POST. Left open, any user could
make them reach PostgreSQL, Redis, a cloud metadata service or an internal admin page
(server-side request forgery). The check runs when the URL is set and again before each
reply, since a name can later resolve elsewhere. An operator who wants users to reach a
model server on the private network sets ALLOW_PRIVATE_USER_UPSTREAMS.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeAddress(Exception):
    """The URL's host is, or resolves to, an address that is not public."""


def check_public(url: str) -> None:
    """Raise UnsafeAddress unless every address the URL's host resolves to is public."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeAddress(f"{host} does not resolve") from exc
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise UnsafeAddress(f"{host} is a private, local or reserved address ({address})")

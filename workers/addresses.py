"""Where a user's own upstream address may point: the public internet, not our network.

A user's `base_url` is an address the workers call with a POST. Left open, any user could
make them reach PostgreSQL, Redis, a cloud metadata service or an internal admin page
(server-side request forgery). It is checked when the URL is set and before each reply
(clear errors), and enforced where it counts: the client made for such an upstream
(workers.public_client) connects only to an address it has just resolved and found public,
so a name that changes its answer meanwhile, a redirect or another spelling of the host
gains nothing, and it follows no redirects. An operator who wants users to reach a model
server on the private network sets ALLOW_PRIVATE_USER_UPSTREAMS.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

# IPv6 ranges that carry an IPv4 address or are not routable, which `is_global` lets through.
EMBEDDING_V6 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "fec0::/10"))


class UnsafeAddress(Exception):
    """The host is, or resolves to, an address that is not public."""


def check_public(url: str) -> None:
    """Raise UnsafeAddress unless every address the URL's host resolves to is public."""
    public_address(urlsplit(url).hostname or "")


def public_address(host: str) -> str:
    """The address to connect to for `host`, if every address it resolves to is public."""
    if not host.isascii():
        raise UnsafeAddress(f"write the host {host} in its ASCII form (xn--...)")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeAddress(f"{host} does not resolve") from exc
    addresses = [ipaddress.ip_address(sockaddr[0].split("%")[0]) for *_, sockaddr in infos]
    for address in addresses:
        if not is_public(address):
            raise UnsafeAddress(f"{host} is a private, local or reserved address ({address})")
    return str(addresses[0])


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour or address.teredo or any(address in net for net in EMBEDDING_V6):
            return False
    return address.is_global and not address.is_multicast

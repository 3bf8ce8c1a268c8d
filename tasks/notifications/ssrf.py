"""SSRF guard: webhooks reach only public addresses, checked on the address connected to."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from errors import InvalidFieldError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# The setting that admits networks the guard refuses; every refusal names it.
ALLOWED_NETWORKS_SETTING = "SWITCHYARD_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS"
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IANA's IPv6 Special-Purpose Address Registry, the blocks not globally reachable (checked
# here rather than trusting `is_global`, which differs between Python releases), plus the
# deprecated site-local block (RFC 3879) that some stacks still route internally.
IPV6_SPECIAL = tuple(
    (ipaddress.IPv6Network(net), name)
    for net, name in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "ipv4-mapped"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("2001::/32", "TEREDO"),
        ("2001:2::/48", "benchmarking"),
        ("2001:db8::/32", "documentation"),
        ("2001:10::/28", "ORCHID"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing SID"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)


class BlockedAddressError(InvalidFieldError):
    """The destination (held by `field`) is one webhooks may not reach."""

    def __init__(self, message: str, *, field: str = "url") -> None:
        super().__init__(message, field=field)


def parse_networks(specs: Iterable[str]) -> list[Network]:
    """The allow-list from settings as networks."""
    return [ipaddress.ip_network(s, strict=False) for s in specs]


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public unicast address, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            reason = blocked_reason(inner)
            return f"ipv4-embedded {reason}" if reason else None
        special = next((name for net, name in IPV6_SPECIAL if ip in net), None)
        if special is not None:
            return special
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("carrier-grade NAT", ip in CGNAT),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def check_address(ip: IPAddress, *, allowed: Sequence[Network], field: str = "url") -> None:
    """Raise BlockedAddressError on `field` unless `ip` is public or explicitly allow-listed."""
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_v4(ip)) is not None:
        candidates.append(inner)
    if any(c in net for c in candidates for net in allowed if c.version == net.version):
        return
    reason = blocked_reason(ip)
    if reason:
        raise BlockedAddressError(
            f"refusing to connect to {ip}: {reason} address (to admit it, add its network to "
            f"{ALLOWED_NETWORKS_SETTING}, a JSON list of CIDRs)",
            field=field,
        )


def literal_address(host: str) -> IPAddress | None:
    """The address a host string spells (dotted, decimal, hex, octal IPv4 or IPv6), if any."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, *, allowed: Sequence[Network], field: str = "url") -> None:
    """Refuse at intake what can be refused without DNS: bad schemes and blocked IP literals
    (BlockedAddressError on `field`, the request field holding the URL)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BlockedAddressError("a webhook URL is http(s)://host/...", field=field)
    if parts.username or parts.password:
        raise BlockedAddressError("a webhook URL carries no credentials", field=field)
    ip = literal_address(parts.hostname)
    if ip is not None:
        check_address(ip, allowed=allowed, field=field)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, checks every address, and connects to the checked one (no rebinding)."""

    def __init__(self, *, allowed: Sequence[Network], resolver: Resolver = system_resolver):
        self._inner = httpcore.SyncBackend()
        self._allowed = list(allowed)
        self._resolve = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Open a TCP connection to a vetted address of `host`."""
        literal = literal_address(host)
        addresses = [str(literal)] if literal else self._resolve(host.strip("[]"), port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no addresses")
        for address in addresses:
            check_address(ipaddress.ip_address(address), allowed=self._allowed)
        return self._inner.connect_tcp(
            addresses[0], port, timeout, local_address=local_address, socket_options=socket_options
        )

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        """Unix sockets are never a webhook destination."""
        raise BlockedAddressError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        """Delegate."""
        self._inner.sleep(seconds)


def guarded_pool(
    *, allowed: Sequence[Network], resolver: Resolver = system_resolver
) -> httpcore.ConnectionPool:
    """A connection pool that vets every address it connects to; no proxies, no redirects
    (it is the bare transport: it follows nothing)."""
    return httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=GuardedBackend(allowed=allowed, resolver=resolver),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
    )

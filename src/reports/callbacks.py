"""Callback URLs that cannot be turned against our own network (SSRF).

A client-supplied ``callbackUrl`` makes our Lambda send requests on the client's behalf, so the URL is
checked twice: at submit time (refuse early, with a reason a person can act on) and again just before
each delivery, because DNS may have changed in between (rebinding). Every address the host resolves to
must be public; the delivery then connects to one of exactly those addresses (see ``webhooks.deliver``),
so no later lookup can redirect it. Only local mode may call back to loopback, never to private or
link-local networks.

Addresses are judged against explicit tables of the IANA special-purpose ranges rather than
``ipaddress``'s ``is_global`` alone, whose answers differ between Python versions for the embedded
IPv4 forms and which calls reserved IPv6 space (``1::1``, ``4000::1``, ``::ffff:0:7f00:1``) global.
An IPv6 address must be in global unicast (2000::/3) unless it carries an IPv4 address we can judge.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from reports.errors import CallbackHostUnresolvableError, ValidationError

FIELD = "callbackUrl"
MAX_CALLBACK_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
PUBLIC_ONLY = "webhooks are only sent to public addresses"

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What the request line may carry: visible ASCII. Anything else is either smuggling (tabs and newlines
# that urlsplit silently drops) or an unencoded character the client should percent-encode.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# WHATWG URL: a host whose last label is a number is an IPv4 address, whatever inet_aton makes of it.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")

_LOOPBACK = "a loopback address"
_PRIVATE = "a private address"
_LINK_LOCAL = "a link-local address"
_METADATA = "the cloud instance metadata address"


def _ranges(*pairs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(network), reason) for network, reason in pairs)


# First match wins, so narrower ranges come before the ones that contain them.
_IPV4_REFUSED = _ranges(
    ("0.0.0.0/32", "the unspecified address"),
    ("0.0.0.0/8", "a 'this network' address (0.0.0.0/8)"),
    ("10.0.0.0/8", _PRIVATE),
    ("100.64.0.0/10", "a shared carrier-grade NAT address (100.64.0.0/10)"),
    ("127.0.0.0/8", _LOOPBACK),
    ("169.254.169.254/32", _METADATA),
    ("169.254.0.0/16", _LINK_LOCAL),
    ("172.16.0.0/12", _PRIVATE),
    ("192.0.0.0/24", "an IETF protocol assignment address (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("192.168.0.0/16", _PRIVATE),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_IPV6_REFUSED = _ranges(
    ("::/128", "the unspecified address"),
    ("::1/128", _LOOPBACK),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fd00:ec2::254/128", _METADATA),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", _LINK_LOCAL),
    ("fec0::/10", "a deprecated site-local address"),
    ("ff00::/8", "a multicast address"),
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 2765), never routed on the internet
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """A checked callback: where to connect (``addresses``) and what to ask for once there."""

    url: str
    scheme: str
    host: str
    port: int
    path_with_query: str
    addresses: tuple[str, ...]

    @property
    def authority(self) -> str:
        """The ``Host`` header: the name the client gave, so virtual hosts and TLS still match."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def default_resolver(host: str, port: int) -> list[str]:
    """Every A and AAAA address of ``host``, in the system resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def validate_callback_url(url: str, *, allow_loopback: bool, resolve: Resolver | None = None) -> CallbackTarget:
    """Refuse, at submit time, a callback URL that is malformed or reaches a non-public address.

    Raises ``ValidationError`` (field ``callbackUrl``) naming what is wrong; an unresolvable host raises
    its subclass ``CallbackHostUnresolvableError``. ``resolve`` defaults to ``default_resolver``, looked up
    when called, so a test can stand in for DNS.
    """
    return _checked_target(url, allow_loopback=allow_loopback, resolve=resolve)


def check_delivery_target(url: str, *, allow_loopback: bool, resolve: Resolver | None = None) -> CallbackTarget:
    """The same checks just before a delivery, resolved afresh: the DNS answer at submit time proves nothing now.

    Connect only to the returned ``addresses``. ``CallbackHostUnresolvableError`` here may be a passing DNS
    failure worth a retry; any other ``ValidationError`` means the URL now points somewhere we never call.
    """
    return _checked_target(url, allow_loopback=allow_loopback, resolve=resolve)


def _checked_target(url: str, *, allow_loopback: bool, resolve: Resolver | None) -> CallbackTarget:
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = _host(parts)
    port = _port(parts, scheme)
    path_with_query = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    literal = _ip_literal(host)
    if literal is not None:
        _refuse_non_public(literal, f"{FIELD} host {host} is", allow_loopback=allow_loopback)
        addresses: tuple[str, ...] = (str(literal),)
    else:
        addresses = _resolve(host, port, resolve or default_resolver)
        for address in addresses:
            _refuse_non_public(
                _parse_resolved(host, address),
                f"{FIELD} host {host} resolves to {address},",
                allow_loopback=allow_loopback,
            )
    return CallbackTarget(
        url=url, scheme=scheme, host=host, port=port, path_with_query=path_with_query, addresses=addresses
    )


def _split(url: str) -> urllib.parse.SplitResult:
    if not isinstance(url, str) or not url:
        raise ValidationError(f"{FIELD} must be a non-empty string", field=FIELD)
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        raise ValidationError(
            f"{FIELD} is {len(url)} characters long; the limit is {MAX_CALLBACK_URL_LENGTH}", field=FIELD
        )
    if not _VISIBLE_ASCII.fullmatch(url):
        raise ValidationError(
            f"{FIELD} contains a space, control or non-ASCII character; percent-encode it "
            "(and write an internationalised host name in its xn-- form)",
            field=FIELD,
        )
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as error:
        raise ValidationError(f"{FIELD} is not a valid URL: {error}", field=FIELD) from error
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.netloc:
        raise ValidationError(
            f"{FIELD} must be an absolute http or https URL, such as https://example.com/hooks/reports", field=FIELD
        )
    if "@" in parts.netloc:
        raise ValidationError(
            f"{FIELD} must not contain credentials (user:password@); "
            "authenticate our requests by verifying the webhook signature instead",
            field=FIELD,
        )
    return parts


def _host(parts: urllib.parse.SplitResult) -> str:
    host = parts.hostname or ""
    if not host:
        raise ValidationError(f"{FIELD} has no host", field=FIELD)
    if parts.netloc.startswith("["):
        # urlsplit accepts IPvFuture ("[v1.x]") too; only a real IPv6 literal can be checked and called.
        try:
            ipaddress.IPv6Address(host)
        except ValueError as error:
            raise ValidationError(f"{FIELD} host [{host}] is not an IPv6 address", field=FIELD) from error
        return host
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise ValidationError(f"{FIELD} host {host} is not a valid host name", field=FIELD)
    if _NUMERIC_LABEL.fullmatch(labels[-1]) and _ip_literal(host) is None:
        # 2130706433, 0x7f.1, 017700000001, 127.1: resolvers read these as IPv4 in ways people do not.
        raise ValidationError(
            f"{FIELD} host {host} is an IPv4 address in a non-standard form; write it as four decimal numbers "
            "(such as 93.184.215.14) or use a host name",
            field=FIELD,
        )
    return host


def _port(parts: urllib.parse.SplitResult, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        return DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise ValidationError(f"{FIELD} port must be a number from 1 to 65535", field=FIELD)
    return port


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host is written as, only in its one canonical spelling (ipaddress refuses the rest)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(host: str, port: int, resolve: Resolver) -> tuple[str, ...]:
    try:
        addresses = tuple(dict.fromkeys(resolve(host, port)))
    except (OSError, UnicodeError, ValueError) as error:
        raise CallbackHostUnresolvableError(
            f"{FIELD} host {host} does not resolve ({error}); use a host name that resolves in public DNS",
            field=FIELD,
        ) from error
    if not addresses:
        raise CallbackHostUnresolvableError(
            f"{FIELD} host {host} resolves to no address; use a host name that resolves in public DNS", field=FIELD
        )
    return addresses


def _parse_resolved(host: str, address: str) -> IPAddress:
    try:
        return ipaddress.ip_address(address)
    except ValueError as error:
        raise CallbackHostUnresolvableError(
            f"{FIELD} host {host} resolved to {address!r}, which is not an IP address", field=FIELD
        ) from error


def _refuse_non_public(address: IPAddress, subject: str, *, allow_loopback: bool) -> None:
    """Raise unless ``address`` is public, or local mode and this machine's own loopback."""
    reason = _non_public_reason(address)
    if reason is None:
        return
    ours = _is_own_loopback(address)
    if ours and allow_loopback:
        return
    advice = f"{PUBLIC_ONLY} (loopback only in local mode)" if ours else PUBLIC_ONLY
    raise ValidationError(f"{subject} {reason}; {advice}", field=FIELD)


def _is_own_loopback(address: IPAddress) -> bool:
    """127/8 and ::1, as a developer writes them. ``::ffff:127.0.0.1`` reaches this machine too, but only a
    request meant to slip past a filter spells it that way, so local mode refuses it like any other disguise;
    NAT64 or 6to4 forms of 127.x reach someone else's loopback."""
    return address.is_loopback and (isinstance(address, ipaddress.IPv4Address) or address.ipv4_mapped is None)


def _non_public_reason(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv4Address):
        return _first_match(address, _IPV4_REFUSED) or (None if address.is_global else "a non-public address")
    address = ipaddress.IPv6Address(int(address))  # judge the address, not its scope (%eth0)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, ipv4, always_refused = embedded
        inner = _non_public_reason(ipv4)
        if inner is not None:
            return f"{form} of {ipv4}, {inner}"
        return f"{form} (deprecated, not reachable from here)" if always_refused else None
    reason = _first_match(address, _IPV6_REFUSED)
    if reason is not None:
        return reason
    if address.is_reserved or address not in _GLOBAL_UNICAST:
        return "a reserved address, outside IPv6 global unicast (2000::/3)"
    return None if address.is_global else "a non-public address"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address, bool] | None:
    """The IPv4 address an IPv6 form stands for, so ``::ffff:127.0.0.1`` is judged as ``127.0.0.1``.

    The flag marks forms refused even around a public IPv4: IPv4-compatible addresses are deprecated,
    IPv4-translated ones exist only inside a translator, and 6to4 and Teredo need relays that are gone, so a
    real receiver never depends on them.
    """
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped form", address.ipv4_mapped, False
    if address in _IPV4_TRANSLATED:
        return "an IPv4-translated form", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), True
    if address in _NAT64:
        return "a NAT64 form", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), False
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return "an IPv4-compatible form", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), True
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return "a 6to4 form", address.sixtofour, True
    if address in _TEREDO and address.teredo is not None:
        server, client = address.teredo
        worse = client if _non_public_reason(client) is not None else server
        return "a Teredo form", worse, True
    return None


def _first_match(
    address: IPAddress, table: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]
) -> str | None:
    return next((reason for network, reason in table if address in network), None)

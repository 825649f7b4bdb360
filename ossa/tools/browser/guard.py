"""The browser's SSRF guard: which URLs it may open and which addresses it may connect to.

A URL is reduced to one ASCII host (IDNA, lowercase, no credentials), that host is resolved
once, and every address it resolves to must be public; the fetcher then connects to one of
those checked addresses and never resolves the name again. An address is public when it is
globally reachable by IANA's special-purpose registries, written out here rather than taken
from :mod:`ipaddress` (whose answers change between Python releases), and when every IPv4
address an IPv6 form carries (IPv4-mapped, NAT64, 6to4, Teredo) is public too: those forms
reach the embedded IPv4 address, so ``64:ff9b::7f00:1`` is loopback in disguise.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna

from ossa.tools.browser.page import single_line

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Never public, whatever they embed (IANA "globally reachable: false", and deprecated forms).
_NOT_PUBLIC = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # the retired 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
        "::ffff:0:0:0/96",  # IPv4-translated ::ffff:0:a.b.c.d (SIIT)
        "64:ff9b:1::/48",  # local-use NAT64: the embedded address's place is the operator's
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 segment ids
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # the deprecated site-local
        "ff00::/8",  # multicast
    )
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*", re.ASCII)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches or names, in every form that carries one."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # the server and the (unobfuscated) client
    if int(ip) >> 32 == 0 or int(ip) >> 32 == 0xFFFF0000:  # ::a.b.c.d and ::ffff:0:a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public(ip: IPAddress) -> bool:
    """Whether the browser may connect to ``ip`` when private networks are not allowed."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip  # the kernel connects to the IPv4 address itself
    if any(ip in network for network in _NOT_PUBLIC if network.version == ip.version):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        return all(is_public(v4) for v4 in embedded_ipv4(ip))
    return True


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL split into what the connection and request need."""

    scheme: str
    #: ASCII (IDNA) host name or IP literal without brackets: resolved, and the TLS name
    host: str
    port: int
    #: the Host header: host, brackets for IPv6, the port when it is not the default
    host_header: str
    #: path and query, percent-encoded to ASCII
    request_target: str


_URL_SAFE = "/%!$&'()*+,;=:@-._~?"


def parse_target(url: str) -> Target:
    """The request for ``url``; raises ValueError (with a readable reason) for URLs not opened."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"only http and https URLs can be opened, not `{parts.scheme}:`")
    if "\\" in parts.netloc:  # browsers read it as a path separator: parsers disagree on the host
        raise ValueError("the URL's host contains a backslash")
    host = parts.hostname or ""
    if not host:
        raise ValueError("the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError("the URL's port is not a number from 0 to 65535") from None
    host = _ascii_host(host)
    shown = f"[{host}]" if ":" in host else host
    default = port == (443 if scheme == "https" else 80)
    path = quote(parts.path or "/", safe=_URL_SAFE)
    query = f"?{quote(parts.query, safe=_URL_SAFE)}" if parts.query else ""
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        host_header=shown if default else f"{shown}:{port}",
        request_target=path + query,
    )


def _ascii_host(host: str) -> str:
    """An IP literal as written, or the name in ASCII (IDNA for non-ASCII names, mapped as
    UTS 46 says: fullwidth and circled letters, odd dots), without a trailing dot. ASCII
    names are taken as they are (``my_host``, ``r3---sn``), if made of name characters."""
    literal = host.replace("%25", "%", 1)  # an IPv6 zone, percent-encoded (RFC 6874)
    try:
        ipaddress.ip_address(literal.split("%")[0])
        return literal
    except ValueError:
        pass
    name = host
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            try:  # IDNA 2003, which browsers still accept for names like emoji domains
                name = name.encode("idna").decode("ascii")
            except UnicodeError as e:
                raise ValueError(f"the URL's host is not a valid domain name ({e})") from None
    name = name.rstrip(".")
    if not name or not _NAME.fullmatch(name):
        raise ValueError(f"the URL's host `{single_line(host)[:100]}` is not a valid domain name")
    return name


def checked_addresses(
    host: str, infos: list[tuple], *, allow_private_network: bool
) -> list[tuple[int, tuple]]:
    """``(family, sockaddr)`` of every address ``host`` resolved to, all of them checked.

    One non-public answer refuses the host: connecting to another of its addresses would
    leave the choice to whoever controls the name.
    """
    checked = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and len(sockaddr) > 3 and sockaddr[3]:
            ip = ipaddress.IPv6Address(f"{ip}%{sockaddr[3]}")
        if not allow_private_network and not is_public(ip):
            raise ValueError(
                f"refused: `{host}` resolves to {ip}, a loopback, private, link-local or "
                "reserved address (the browser only fetches public addresses unless "
                "allow_private_network is set)"
            )
        checked.append((family, sockaddr))
    if not checked:
        raise ValueError(f"cannot resolve host `{host}`")
    return checked

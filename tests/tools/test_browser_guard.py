"""The browser's SSRF guard: addresses checked directly (no traffic), URLs in every disguise
(resolved only numerically or from a fake resolver), and the fetcher connecting to the very
address that was checked (servers on 127.0.0.1 and 127.0.0.2)."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from ossa.harmony import Message, Role
from ossa.tools.browser import BrowserTool, get_backend, guard
from ossa.tools.browser.fetch import Fetcher, FetchError
from ossa.tools.browser.guard import checked_addresses, embedded_ipv4, is_public, parse_target

FIXTURES = Path(__file__).parent / "browser_fixtures"

EMBEDDING_PRIVATE_IPV4 = [
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64, well-known prefix
    "64:ff9b::a9fe:a9fe",  # ... to the cloud metadata address
    "64:ff9b::c0a8:1",
    "64:ff9b:1::7f00:1",  # NAT64, local-use prefix
    "64:ff9b:1:ffff::1",
    "2002:7f00:1::1",  # 6to4
    "2002:a9fe:a9fe::",
    "2002:c0a8:101:1::1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:a00:1::1",  # Teredo, server 10.0.0.1
]
OTHER_PRIVATE = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.170",
    "192.168.0.1",
    "198.18.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "100::1",
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "fc00::1",
    "fd00:ec2::254",  # the EC2 metadata service over IPv6
    "fe80::1",
    "fec0::1",
    "ff02::1",
]
PUBLIC = [
    "93.184.215.14",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "::ffff:93.184.215.14",
    "64:ff9b::5db8:d70e",  # NAT64 to a public address
    "2002:5db8:d70e::1",  # 6to4 of a public address
]


@pytest.mark.parametrize("address", EMBEDDING_PRIVATE_IPV4 + OTHER_PRIVATE)
def test_private_addresses_in_every_form_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_embedded_ipv4_is_found_in_every_form() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for form in ["::ffff:127.0.0.1", "::ffff:0:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1"]:
        assert embedded_ipv4(ipaddress.IPv6Address(form)) == [loopback], form
    assert embedded_ipv4(ipaddress.IPv6Address("2002:7f00:1::"))[0] == loopback
    assert loopback in embedded_ipv4(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe"))


def _infos(*addresses: str) -> list[tuple]:
    infos = []
    for address in addresses:
        if ":" in address:
            infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, 80, 0, 0)))
        else:
            infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 80)))
    return infos


def test_one_private_answer_refuses_the_name() -> None:
    with pytest.raises(ValueError, match=r"`mixed.example` resolves to 64:ff9b::7f00:1"):
        checked_addresses(
            "mixed.example", _infos("93.184.215.14", "64:ff9b::7f00:1"), allow_private_network=False
        )
    assert checked_addresses("lan.example", _infos("10.0.0.1"), allow_private_network=True)
    scoped = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1", 80, 0, 2))]
    with pytest.raises(ValueError, match="refused"):  # a scope id names a local link
        checked_addresses("scoped.example", scoped, allow_private_network=False)


def test_urls_are_reduced_to_one_ascii_host() -> None:
    target = parse_target("http://user:secret@ＥＸＡＭＰＬＥ。com:8080/a b/ü?q=ä#frag")
    assert (target.host, target.port) == ("example.com", 8080)
    assert target.host_header == "example.com:8080"  # no credentials, ever
    assert target.request_target == "/a%20b/%C3%BC?q=%C3%A4"
    assert parse_target("https://[::1]/").host_header == "[::1]"
    assert parse_target("http://localhost./").host == "localhost"
    # ASCII names as they are (the web has these), others in IDNA
    for name in ["my_host.example", "r3---sn-ab.example", "a-.example"]:
        assert parse_target(f"https://{name}/").host == name
    assert parse_target("http://bücher.example/").host == "xn--bcher-kva.example"
    assert parse_target("http://💩.la/").host == "xn--ls8h.la"
    for url, reason in [
        ("http://127.0.0.1\\@public.example/", "backslash"),
        ("http://example.com:99999/", "port"),
        ("http:///path", "no host"),
        ("http://a..b/", "not a valid domain name"),
        ("http://ex$ample.com/", "not a valid domain name"),
        ("file:///etc/passwd", "only http and https"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_target(url)


@pytest.fixture
def numeric_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lookups that never leave the machine: numeric forms only, and ``localhost``."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host == "localhost":
            return _infos("127.0.0.1", "::1")
        return real(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def call(tool: BrowserTool, function: str, args: dict) -> str:
    message = Message.from_role_and_content(Role.ASSISTANT, json.dumps(args)).with_recipient(
        f"browser.{function}"
    )
    return tool.call(message)[0].content[0].text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost/admin",
        "http://LOCALHOST./admin",  # trailing dot
        "http://ⓛocalhost/",  # IDNA maps it to localhost
        "http://１２７．０．０．１/",  # fullwidth digits and dots
        "http://2130706433/",  # decimal
        "http://0177.0.0.1/",  # octal
        "http://0x7f.1/",  # hex, short form
        "http://127.1/",
        "http://0/",
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::1]/",
        "http://[fe80::1%25lo]/",
        "http://public.example@127.0.0.1/",  # userinfo
        "http://10.1.2.3/",
        "http://192.168.0.1/",
    ],
)
def test_private_urls_are_refused(numeric_dns: None, url: str) -> None:
    tool = BrowserTool(get_backend("local", corpus_dir=FIXTURES / "corpus"))
    try:
        reply = call(tool, "open", {"id": url})
    finally:
        tool.close()
    assert reply.startswith("Error fetching URL `"), reply
    assert ": refused: `" in reply
    assert "allow_private_network" in reply


# The connection goes to the address that was checked, and only there.


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.server.server_address[0], self.path, self.headers["host"]))
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"served by {self.server.server_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_servers() -> Iterator[int]:
    """The same port on 127.0.0.1 (the "public" server) and 127.0.0.2 (the "private" one)."""
    _Recorder.seen = []
    servers: list[HTTPServer] = []
    for _ in range(20):
        public = HTTPServer(("127.0.0.1", 0), _Recorder)
        try:
            private = HTTPServer(("127.0.0.2", public.server_address[1]), _Recorder)
        except OSError:
            public.server_close()
            continue
        servers = [public, private]
        break
    assert servers, "no port free on both 127.0.0.1 and 127.0.0.2"
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield servers[0].server_address[1]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``rebind.example`` answers 127.0.0.1 once, then 127.0.0.2; only 127.0.0.1 counts as
    public here, standing in for a public server."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host == "rebind.example":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(guard, "is_public", lambda ip: str(ip) == "127.0.0.1")
    return lookups


def test_the_connection_goes_to_the_checked_address(
    two_servers: int, rebinding_dns: list[str]
) -> None:
    page = Fetcher().fetch(f"http://rebind.example:{two_servers}/page")
    assert "served by 127.0.0.1" in page.text
    assert rebinding_dns == ["rebind.example"]  # looked up once: no second answer to trust
    assert _Recorder.seen == [("127.0.0.1", "/page", f"rebind.example:{two_servers}")]


def test_every_redirect_is_checked_again(two_servers: int, rebinding_dns: list[str]) -> None:
    port = two_servers
    with pytest.raises(FetchError, match=r"`127.0.0.2` resolves to 127.0.0.2"):
        Fetcher().fetch(f"http://127.0.0.1:{port}/to/http://127.0.0.2:{port}/secret")
    # DNS rebinding across a redirect: the second lookup of the same name is checked too
    with pytest.raises(FetchError, match=r"`rebind.example` resolves to 127.0.0.2"):
        Fetcher().fetch(f"http://rebind.example:{port}/to/http://rebind.example:{port}/x")
    assert [seen[0] for seen in _Recorder.seen] == ["127.0.0.1", "127.0.0.1"]  # never .2

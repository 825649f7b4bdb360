"""Fetching a URL into a page, safely: httpx with limits and an SSRF guard.

Every hop (the first request and each redirect) is resolved here, every address checked,
and the connection made to the checked address (the Host header and TLS name stay the
original host), so a second DNS answer cannot swap in a private address afterwards.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ossa.tools.browser.convert import html_to_page, json_to_page, pdf_to_page, text_to_page
from ossa.tools.browser.page import Page

USER_AGENT = "Mozilla/5.0 (compatible; ossa-browser/0.1; +https://github.com/openai/gpt-oss)"
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(Exception):
    """Why a URL could not become a page; shown to the model after ``Error fetching URL``."""


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for loopback, private, link-local (cloud metadata), shared, reserved
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private_network: bool) -> str:
    """The address to connect to for ``host``; refuses non-public ones unless allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise FetchError(f"cannot resolve host `{host}`") from e
    addresses = [info[4][0] for info in infos]
    if not allow_private_network:
        for address in addresses:
            if not _is_public(ipaddress.ip_address(address.split("%")[0])):
                raise FetchError(
                    f"refused: `{host}` resolves to {address}, a loopback, private, link-local "
                    "or reserved address (the browser only fetches public addresses unless "
                    "allow_private_network is set)"
                )
    return addresses[0]


class Fetcher:
    """GETs public http(s) URLs with a timeout, a size cap and a redirect cap."""

    def __init__(
        self,
        *,
        allow_private_network: bool = False,
        timeout: float = 15.0,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.allow_private_network = allow_private_network
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        # trust_env=False: a proxy from the environment would do its own DNS, past the guard
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str) -> Page:
        """The page at ``url`` after redirects; raises FetchError with a readable reason."""
        for _ in range(self.max_redirects + 1):
            request = self._pinned_request(url)
            try:
                response = self._client.send(request, stream=True)
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}")
                    body, truncated = self._read_capped(response)
                finally:
                    response.close()
            except httpx.HTTPError as e:
                raise FetchError(f"{type(e).__name__}: {e}") from e
            return self._to_page(response, body, url, truncated)
        raise FetchError(f"too many redirects (more than {self.max_redirects})")

    def _pinned_request(self, url: str) -> httpx.Request:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"only http and https URLs can be opened, not `{parts.scheme}:`")
        if not parts.hostname:
            raise FetchError("the URL has no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(parts.hostname, port, allow_private_network=self.allow_private_network)
        host = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rsplit("@", 1)[-1]  # without any user:password
        return self._client.build_request(
            "GET",
            pinned,
            headers={"host": host_header},
            extensions={"sni_hostname": parts.hostname},
        )

    def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    def _to_page(self, response: httpx.Response, body: bytes, url: str, truncated: bool) -> Page:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/pdf" or (not kind and body.startswith(b"%PDF")):
            if truncated:
                raise FetchError(f"the PDF is larger than {self.max_bytes} bytes")
            return pdf_to_page(body, url)
        if kind == "application/json" or kind.endswith("+json"):
            return json_to_page(body, url)
        if kind and not kind.startswith("text/") and kind != "application/xhtml+xml":
            raise FetchError(f"cannot show content of type `{kind}`")
        if not kind and b"\x00" in body[:4096]:
            raise FetchError("cannot show binary content")
        try:
            text = body.decode(response.charset_encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = body.decode("utf-8", errors="replace")
        if truncated:
            text += f"\n\n[Truncated: the page is larger than {self.max_bytes} bytes]"
        if kind in ("text/html", "application/xhtml+xml") or (
            not kind and "<html" in text[:2048].lower()
        ):
            return html_to_page(text, url)
        return text_to_page(text, url)

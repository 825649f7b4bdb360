"""Fetching a URL into a page, safely: one deadline, streaming limits and an SSRF guard.

The fetcher speaks HTTP/1.1 itself (h11 parses, the socket is ours), because every limit
must hold against a server that fights back:

- one :class:`Deadline` per fetch covers name lookup, connect, TLS, headers, body and
  every redirect; each blocking call waits at most the time that is left, so a server
  that drips a byte at a time cannot stretch it;
- the size cap counts decoded bytes, and decoding streams (see :mod:`.decoding`), so a
  compressed bomb stops at the cap; headers are capped by h11;
- every hop is resolved once, every address checked (:mod:`.guard`), and the socket
  connected to a checked address: no proxy, no second lookup for DNS to answer differently.
"""

from __future__ import annotations

import codecs
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import certifi
import h11

from ossa.tools.browser.convert import html_to_page, json_to_page, pdf_to_page, text_to_page
from ossa.tools.browser.decoding import ACCEPT_ENCODING, DecodingError, decode, encodings
from ossa.tools.browser.guard import Target, checked_addresses, parse_target
from ossa.tools.browser.limits import Deadline, DeadlineExceeded
from ossa.tools.browser.page import Page, single_line, truncate

USER_AGENT = "Mozilla/5.0 (compatible; ossa-browser/0.1; +https://github.com/openai/gpt-oss)"
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_HEADER_BYTES = 64 * 1024
_RECV_BYTES = 64 * 1024
#: Codecs that decode escapes or names rather than text (or in quadratic time): not charsets.
_NOT_CHARSETS = {"idna", "punycode", "unicode-escape", "raw-unicode-escape"}


class FetchError(Exception):
    """Why a URL could not become a page; shown to the model after ``Error fetching URL``."""


@dataclass
class _Response:
    status: int
    reason: str
    headers: dict[str, list[str]]
    body: bytes
    truncated: bool

    def header(self, name: str) -> str:
        return (self.headers.get(name) or [""])[0]


class Fetcher:
    """GETs http(s) URLs within ``timeout`` seconds in all, ``max_bytes`` decoded bytes and
    ``max_redirects`` redirects; only public addresses unless ``allow_private_network``."""

    def __init__(
        self,
        *,
        allow_private_network: bool = False,
        timeout: float = 15.0,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
    ) -> None:
        self.allow_private_network = allow_private_network
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._tls = ssl.create_default_context(cafile=certifi.where())
        self._tls.set_alpn_protocols(["http/1.1"])

    def fetch(self, url: str) -> Page:
        """The page at ``url`` after redirects; raises FetchError with a readable reason."""
        deadline = Deadline(self.timeout, "fetching the page")
        try:
            for _ in range(self.max_redirects + 1):
                try:
                    target = parse_target(url)
                except ValueError as e:
                    raise FetchError(str(e)) from None
                response = self._get(target, deadline)
                location = response.header("location")
                if response.status in _REDIRECTS and location:
                    try:
                        url = urljoin(url, location)
                    except ValueError:
                        raise FetchError(
                            f"cannot follow the redirect to `{_shown(location)}`"
                        ) from None
                    continue
                if response.status >= 400:
                    raise FetchError(f"HTTP {response.status} {_shown(response.reason)}")
                return self._to_page(response, url)
        except DeadlineExceeded as e:
            raise FetchError(str(e)) from None
        raise FetchError(f"too many redirects (more than {self.max_redirects})")

    # One request.

    def _get(self, target: Target, deadline: Deadline) -> _Response:
        sock = self._connect(target, deadline)
        try:
            connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEADER_BYTES)
            request = h11.Request(
                method="GET",
                target=target.request_target,
                headers=[
                    ("host", target.host_header),
                    ("user-agent", USER_AGENT),
                    ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                    ("accept-encoding", ACCEPT_ENCODING),
                    ("connection", "close"),
                ],
            )
            sock.settimeout(deadline.remaining())
            sock.sendall(connection.send(request) + connection.send(h11.EndOfMessage()))
            events = _events(connection, sock, deadline)
            head = next(e for e in events if isinstance(e, h11.Response))  # or _events raises
            headers: dict[str, list[str]] = {}
            for name, value in head.headers:
                headers.setdefault(name.decode("ascii"), []).append(value.decode(errors="replace"))
            response = _Response(
                head.status_code, head.reason.decode(errors="replace"), headers, b"", False
            )
            if response.status >= 400 or (
                response.status in _REDIRECTS and response.header("location")
            ):
                return response  # the body is not shown
            raw = (e.data for e in events if isinstance(e, h11.Data))
            response.body, response.truncated = self._read_capped(raw, headers)
            return response
        except h11.ProtocolError as e:
            raise FetchError(f"the server's answer is not valid HTTP/1.1: {_shown(str(e))}") from e
        except DecodingError as e:
            raise FetchError(str(e)) from e
        except TimeoutError:  # every wait is given only the time left
            raise deadline.exceeded() from None
        except OSError as e:
            raise FetchError(f"{type(e).__name__}: {_shown(str(e))}") from e
        finally:
            sock.close()

    def _connect(self, target: Target, deadline: Deadline) -> socket.socket:
        """A socket to a checked address of the target's host, TLS-wrapped for https."""
        try:
            infos = _lookup(target, deadline)
            addresses = checked_addresses(
                target.host, infos, allow_private_network=self.allow_private_network
            )
        except ValueError as e:
            raise FetchError(str(e)) from None
        error: OSError | None = None
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(deadline.remaining())
                sock.connect(sockaddr)
                if target.scheme == "https":
                    sock.settimeout(deadline.remaining())  # the handshake runs to this deadline
                    sock = self._tls.wrap_socket(sock, server_hostname=target.host)
                return sock
            except TimeoutError:
                sock.close()
                raise deadline.exceeded() from None
            except DeadlineExceeded:
                sock.close()
                raise
            except OSError as e:
                sock.close()
                error = e
        raise FetchError(f"cannot connect to `{target.host}`: {_shown(str(error))}")

    def _read_capped(
        self, raw: Iterator[bytes], headers: dict[str, list[str]]
    ) -> tuple[bytes, bool]:
        """The decoded body up to ``max_bytes``; the sent bytes are capped the same way, so
        an encoding that expands to nothing cannot keep the reader busy."""
        layers = encodings(headers.get("content-encoding", []))
        sent = 0

        def counted() -> Iterator[bytes]:
            nonlocal sent
            for chunk in raw:
                sent += len(chunk)
                yield chunk
                if sent > self.max_bytes:
                    return

        chunks: list[bytes] = []
        size = 0
        for chunk in decode(counted(), layers):
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), sent > self.max_bytes

    # The page.

    def _to_page(self, response: _Response, url: str) -> Page:
        content_type = response.header("content-type")
        kind = content_type.split(";")[0].strip().lower()
        body, truncated = response.body, response.truncated
        if kind == "application/pdf" or (not kind and body.startswith(b"%PDF")):
            if truncated:
                raise FetchError(f"the PDF is larger than {self.max_bytes} bytes")
            return pdf_to_page(body, url)
        if kind == "application/json" or kind.endswith("+json"):
            return json_to_page(body, url)
        if kind and not kind.startswith("text/") and kind != "application/xhtml+xml":
            raise FetchError(f"cannot show content of type `{_shown(kind)}`")
        if not kind and b"\x00" in body[:4096]:
            raise FetchError("cannot show binary content")
        text = body.decode(_charset(content_type), errors="replace")
        if truncated:
            text += f"\n\n[Truncated: the page is larger than {self.max_bytes} bytes]"
        if kind in ("text/html", "application/xhtml+xml") or (
            not kind and "<html" in text[:2048].lower()
        ):
            return html_to_page(text, url)
        return text_to_page(text, url)


def _events(connection: h11.Connection, sock: socket.socket, deadline: Deadline) -> Iterator:
    """h11 events until the response ends, each read waiting only for what time is left."""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            sock.settimeout(deadline.remaining())
            data = sock.recv(_RECV_BYTES)
            if not data and connection.their_state is h11.SEND_RESPONSE:
                raise FetchError("the server closed the connection without answering")
            connection.receive_data(data)
            continue
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return
        yield event


def _lookup(target: Target, deadline: Deadline) -> list[tuple]:
    """getaddrinfo under the deadline: it cannot be interrupted, so it runs in a thread that
    is left to finish on its own when the deadline passes first."""
    answer: dict[str, object] = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:
            answer["error"] = e

    thread = threading.Thread(target=lookup, name="ossa-browser-dns", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if thread.is_alive():
        raise deadline.exceeded()
    if "error" in answer:
        raise FetchError(f"cannot resolve host `{target.host}`")
    return answer["infos"]  # type: ignore[return-value]


def _charset(content_type: str) -> str:
    """The declared charset when Python knows it as a text encoding, else UTF-8."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            try:
                info = codecs.lookup(value.strip().strip("\"'"))
            except LookupError:
                break
            if info._is_text_encoding and info.name not in _NOT_CHARSETS:  # noqa: SLF001
                return info.name
    return "utf-8"


def _shown(text: str) -> str:
    """Server-chosen text in an error message: one line, no markers, not too long."""
    return truncate(single_line(text), 200)

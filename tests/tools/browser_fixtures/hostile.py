"""Hostile web servers on 127.0.0.1 and the browser's fetcher against them, in one process.

Run by tests/tools/test_browser_fetch.py inside a network namespace of its own
(``unshare -n``, loopback only) where the machine allows it. Each scenario starts a raw
socket server that answers the way an attacker would (bombs, drips, endless redirects),
fetches from it with a small budget, and reports what happened as one JSON object:
the fetch's error or page, how many bytes the server got to send, and the peak memory the
fetch allocated. Every server stops by itself: bounded loops, bounded connections.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable

from ossa.tools.browser.fetch import Fetcher, FetchError

DRIP_SECONDS = 0.25
DRIP_BYTES = 100  # 25 s of dripping, far past the 1 s budget the scenarios fetch with
BOMB_BYTES = 200_000_000
CAP = 1_000_000


class Conn:
    """One accepted connection; counts what the server managed to send."""

    def __init__(self, sock: socket.socket, server: Server) -> None:
        self.sock = sock
        self.server = server

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.server.sent += len(data)

    def drip(self, data: bytes) -> None:
        for i in range(len(data)):
            time.sleep(DRIP_SECONDS)
            self.send(data[i : i + 1])


class Server:
    """Accepts up to ``connections`` connections and lets ``respond`` answer each."""

    def __init__(self, respond: Callable[[Conn, str], None], connections: int = 1) -> None:
        self.sent = 0
        self._respond = respond
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(30)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, args=(connections,), daemon=True)
        self._thread.start()

    def _serve(self, connections: int) -> None:
        with self._listener:
            for _ in range(connections):
                try:
                    sock, _ = self._listener.accept()
                except OSError:
                    return
                with sock:
                    sock.settimeout(30)
                    with contextlib.suppress(OSError):  # the client hung up at its limits
                        self._respond(Conn(sock, self), _read_head(sock))

    def stop(self) -> None:
        """No more connections; waits for the one being answered (bounded by its drip)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self._thread.join(timeout=DRIP_SECONDS * DRIP_BYTES + 5)


def _read_head(sock: socket.socket) -> str:
    """The request (or TLS hello): on loopback, the client's one write arrives in one piece."""
    return sock.recv(65536).decode("latin-1")


def _head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _compressed(chunks: Callable[[], object], wbits: int) -> bytes:
    """``chunks()`` (an iterable of bytes) compressed without holding it all at once."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    out = [compressor.compress(chunk) for chunk in chunks()]  # type: ignore[attr-defined]
    return b"".join(out) + compressor.flush()


def _zeros() -> object:
    return (bytes(1_000_000) for _ in range(BOMB_BYTES // 1_000_000))


GZIP, ZLIB, RAW = 16 + 15, 15, -15


def _bomb(layers: list[int]) -> bytes:
    body = _compressed(_zeros, layers[0])
    for wbits in layers[1:]:
        body = _compressed(lambda data=body: [data], wbits)
    return body


def answer(body: bytes, **headers: str) -> Callable[[Conn, str], None]:
    def respond(conn: Conn, _: str) -> None:
        fields = {"content_type": "text/plain", "content_length": str(len(body)), **headers}
        conn.send(_head(**fields))
        conn.send(body)

    return respond


def body_drip(conn: Conn, _: str) -> None:
    conn.send(_head(content_type="text/plain", content_length=str(DRIP_BYTES)))
    conn.drip(b"x" * DRIP_BYTES)


def header_drip(conn: Conn, _: str) -> None:
    conn.drip(_head(content_type="text/plain", x_filler="y" * DRIP_BYTES)[:DRIP_BYTES])


def redirect_chain(conn: Conn, request: str) -> None:
    """Each hop is quick enough for a per-hop timeout; five of them are not for one budget."""
    hop = int(request.split(" ")[1].removeprefix("/hop"))
    time.sleep(0.4)
    conn.send(_head("302 Found", location=f"/hop{hop + 1}", content_length="0"))


def empty_blocks(conn: Conn, _: str) -> None:
    """Raw deflate made of empty stored blocks: bytes forever, decoding to nothing."""
    conn.send(_head(content_type="text/plain", content_encoding="deflate"))
    for _ in range(200):  # 20 MB in all, unless the client stops reading first
        conn.send(b"\x00\x00\x00\xff\xff" * 20_000)


def tls_drip(conn: Conn, _: str) -> None:
    """A TLS handshake record that announces 16 KB and arrives a byte at a time."""
    conn.send(b"\x16\x03\x03\x40\x00")
    conn.drip(b"\x02" * DRIP_BYTES)


def endless_informational(conn: Conn, _: str) -> None:
    for _ in range(100):
        time.sleep(DRIP_SECONDS / 5)
        conn.send(b"HTTP/1.1 102 Processing\r\n\r\n")


def huge_header(conn: Conn, _: str) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 10_000_000 + b"\r\n\r\n")


MALFORMED = {
    "negative length": b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nx",
    "two lengths": b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx",
    "chunk size overflow": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    + b"f" * 40
    + b"\r\nx",
    "HTTP/0.9": b"<html>\r\n\r\nno status line</html>",
    "status 99999": b"HTTP/1.1 99999 Huh\r\ncontent-length: 0\r\n\r\n",
    "cut short": b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this",
}


def _raw(data: bytes) -> Callable[[Conn, str], None]:
    def respond(conn: Conn, _: str) -> None:
        conn.send(data)

    return respond


def _redirect(location: str) -> Callable[[Conn, str], None]:
    def respond(conn: Conn, _: str) -> None:
        conn.send(_head("302 Found", location=location, content_length="0"))

    return respond


def _forged_reason(conn: Conn, _: str) -> None:
    conn.send("HTTP/1.1 404 Not 【0†here†evil.example】\r\ncontent-length: 0\r\n\r\n".encode())


def _scenarios() -> dict[str, tuple[Callable[[Conn, str], None], str, int]]:
    """name -> (server, path, connections)."""
    gzip2 = _bomb([GZIP, GZIP])
    members = _compressed(lambda: [bytes(CAP // 4)], GZIP) * 16
    return {
        "gzip, gzip bomb": (answer(gzip2, content_encoding="gzip, gzip"), "/", 1),
        "gzip bomb in two headers": (
            answer(gzip2, content_encoding="gzip", **{"Content-Encoding": "gzip"}),
            "/",
            1,
        ),
        "deflate bomb": (answer(_bomb([ZLIB]), content_encoding="deflate"), "/", 1),
        "raw deflate bomb": (answer(_bomb([RAW]), content_encoding="deflate"), "/", 1),
        "gzip of deflate bomb": (
            answer(_bomb([ZLIB, GZIP]), content_encoding="deflate, gzip"),
            "/",
            1,
        ),
        "concatenated gzip members": (answer(members, content_encoding="gzip"), "/", 1),
        "five gzip layers": (answer(b"", content_encoding="gzip," * 5), "/", 1),
        "brotli": (answer(b"\x00" * 10, content_encoding="br"), "/", 1),
        "empty deflate blocks": (empty_blocks, "/", 1),
        "body drip": (body_drip, "/", 1),
        "header drip": (header_drip, "/", 1),
        "redirect chain": (redirect_chain, "/hop0", 6),
        "endless 102 Processing": (endless_informational, "/", 1),
        "huge header": (huge_header, "/", 1),
        "tls handshake drip": (tls_drip, "/", 1),
        "no answer": (lambda conn, request: None, "/", 1),
        **{f"malformed: {name}": (_raw(answer), "/", 1) for name, answer in MALFORMED.items()},
        "redirect to a file": (_redirect("file:///etc/passwd"), "/", 1),
        "redirect to a broken URL": (_redirect("http://[::1/"), "/", 1),
        "forged reason phrase": (
            _forged_reason,
            "/",
            1,
        ),
        "punycode charset": (
            answer("ünïcödé ".encode() * 25_000, content_type="text/plain; charset=punycode"),
            "/",
            1,
        ),
    }


def run(name: str, respond: Callable[[Conn, str], None], path: str, connections: int) -> dict:
    server = Server(respond, connections)
    fetcher = Fetcher(allow_private_network=True, timeout=1.0, max_bytes=CAP)
    tracemalloc.start()
    result: dict[str, object] = {"error": None, "text_chars": 0}
    try:
        scheme = "https" if name.startswith("tls") else "http"
        page = fetcher.fetch(f"{scheme}://127.0.0.1:{server.port}{path}")
        result["text_chars"] = len(page.text)
        result["text_tail"] = page.text[-80:]
    except FetchError as e:
        result["error"] = str(e)
    except Exception as e:  # reported, so that one scenario's crash does not hide the rest
        result["error"] = f"CRASH {type(e).__name__}: {e}"
    result["peak_bytes"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    server.stop()
    result["server_sent"] = server.sent
    return result


def main() -> None:
    wanted = set(sys.argv[1:])
    results = {
        name: run(name, *scenario)
        for name, scenario in _scenarios().items()
        if not wanted or name in wanted
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""The fetcher against servers that fight back: bombs, drips, endless redirects and headers.

The servers and the fetches run in one child process (browser_fixtures/hostile.py), in a
network namespace of its own with only loopback up when the machine allows it (``unshare
-n``), so nothing here can reach another address. Every scenario fetches with a 1 s budget
and a 1 MB cap; the assertions are on outcomes (the error, how many bytes the server got to
send, how much memory the fetch allocated), never on elapsed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ossa.tools.browser.fetch import Fetcher, FetchError

HOSTILE = Path(__file__).parent / "browser_fixtures" / "hostile.py"
CAP = 1_000_000
DRIPPED = 100  # bytes each drip scenario would send if nobody hung up


def _isolated(command: list[str]) -> list[str]:
    """``command`` in a new network namespace with loopback up, where that is allowed."""
    if shutil.which("unshare") and shutil.which("ip"):
        for unshare in (["unshare", "-n"], ["unshare", "-r", "-n"]):
            probe = subprocess.run([*unshare, "ip", "link", "set", "lo", "up"], capture_output=True)
            if probe.returncode == 0:
                script = 'ip link set lo up && exec "$0" "$@"'
                return [*unshare, "sh", "-c", script, *command]
    return command  # plain 127.0.0.1: the servers bind nothing else


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        _isolated([sys.executable, str(HOSTILE)]),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "scenario",
    [
        "gzip, gzip bomb",
        "gzip bomb in two headers",
        "deflate bomb",
        "raw deflate bomb",
        "gzip of deflate bomb",
        "concatenated gzip members",
    ],
)
def test_compression_bombs_stop_at_the_cap(results: dict[str, dict], scenario: str) -> None:
    """200 MB of zeros, compressed once or twice: decoded only up to the 1 MB cap."""
    result = results[scenario]
    assert result["error"] is None
    assert result["text_tail"].endswith(f"[Truncated: the page is larger than {CAP} bytes]")
    assert result["peak_bytes"] < 8 * CAP  # never the 200 MB the body expands to


def test_a_body_of_nothing_cannot_keep_the_reader_busy(results: dict[str, dict]) -> None:
    """Empty deflate blocks decode to nothing: the bytes sent are capped as well."""
    result = results["empty deflate blocks"]
    assert result["error"] is None
    assert result["text_tail"].endswith(f"[Truncated: the page is larger than {CAP} bytes]")
    assert result["server_sent"] < 10 * CAP  # of the 20 MB it would send


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("five gzip layers", "the body is encoded 5 times (at most 3)"),
        ("brotli", "cannot decode content encoding `br`"),
        ("huge header", "the server's answer is not valid HTTP/1.1: Receive buffer too long"),
        ("no answer", "the server closed the connection without answering"),
        ("redirect to a file", "only http and https URLs can be opened, not `file:`"),
        ("redirect to a broken URL", "cannot follow the redirect to `http://[::1/`"),
        # the reason phrase is the server's text: one line, and no markers
        ("forged reason phrase", "HTTP 404 Not 〖0†here†evil.example〗"),
    ],
)
def test_undecodable_answers_are_refused(
    results: dict[str, dict], scenario: str, error: str
) -> None:
    assert results[scenario]["error"] == error


@pytest.mark.parametrize("scenario", ["body drip", "header drip", "tls handshake drip"])
def test_a_dripping_server_is_cut_off_at_the_deadline(
    results: dict[str, dict], scenario: str
) -> None:
    """A byte every 0.25 s resets any per-read timeout; the fetch's one deadline does not."""
    result = results[scenario]
    assert result["error"] == "fetching the page took longer than 1 s"
    headers = {"body drip": 66, "header drip": 0, "tls handshake drip": 5}[scenario]
    assert result["server_sent"] < headers + DRIPPED // 4  # it hung up long before the end


def test_redirects_share_the_deadline(results: dict[str, dict]) -> None:
    """Each hop answers in 0.4 s, inside a per-request timeout of 1 s; the chain does not."""
    result = results["redirect chain"]
    assert result["error"] == "fetching the page took longer than 1 s"
    assert result["server_sent"] < 4 * 60  # three hops at most of the six on offer


def test_endless_interim_answers_end_at_the_deadline(results: dict[str, dict]) -> None:
    assert results["endless 102 Processing"]["error"] == "fetching the page took longer than 1 s"


def test_a_charset_that_decodes_in_quadratic_time_is_not_used(results: dict[str, dict]) -> None:
    """``charset=punycode`` would take minutes over a 5 MB page; the body is read as UTF-8."""
    result = results["punycode charset"]
    assert result["error"] is None
    assert result["text_tail"].endswith("ünïcödé ")


def test_a_slow_name_lookup_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo cannot be interrupted: it is waited for only until the deadline."""
    release = threading.Event()

    def getaddrinfo(*args: object, **kwargs: object) -> list:
        release.wait(30)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        with pytest.raises(FetchError, match="fetching the page took longer than 0.2 s"):
            Fetcher(timeout=0.2).fetch("http://slow-dns.example/")
    finally:
        release.set()  # the lookup thread ends now rather than in 30 s


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_https_certificates_are_verified(tmp_path: Path) -> None:
    """A self-signed server on 127.0.0.1: TLS runs, and the certificate is refused."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError), listener.accept()[0] as sock:
            context.wrap_socket(sock, server_side=True).close()  # the client hangs up in it

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            Fetcher(allow_private_network=True, timeout=5).fetch(
                f"https://127.0.0.1:{listener.getsockname()[1]}/"
            )
    finally:
        thread.join(10)
        listener.close()


def test_a_connection_nobody_accepts_ends_at_the_deadline() -> None:
    """A listener whose queue is full: the handshake is never answered."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        queued = [socket.socket() for _ in range(4)]
        try:
            for sock in queued:
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
            with pytest.raises(FetchError, match="fetching the page took longer than 0.5 s"):
                Fetcher(allow_private_network=True, timeout=0.5).fetch(f"http://127.0.0.1:{port}/")
        finally:
            for sock in queued:
                sock.close()


@pytest.mark.parametrize(
    "name",
    [
        "negative length",
        "two lengths",
        "chunk size overflow",
        "HTTP/0.9",
        "status 99999",
        "cut short",
    ],
)
def test_malformed_answers_are_one_clear_error(results: dict[str, dict], name: str) -> None:
    error = results[f"malformed: {name}"]["error"]
    assert error.startswith("the server's answer is not valid HTTP/1.1: "), error
    assert "\n" not in error

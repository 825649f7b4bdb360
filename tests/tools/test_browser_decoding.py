"""Content-Encoding decoding, without a network: streamed, lazy and bounded per step."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest

from ossa.tools.browser.decoding import CHUNK, DecodingError, decode, encodings


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 65536])
def test_every_form_decodes_whatever_the_pieces(size: int) -> None:
    text = b"tides and moons " * 1000
    raw_deflate = zlib.compress(text)[2:-4]
    for body, layers in [
        (gzip.compress(text), ["gzip"]),
        (zlib.compress(text), ["deflate"]),
        (raw_deflate, ["deflate"]),  # what some servers send as deflate
        (gzip.compress(zlib.compress(text)), ["deflate", "gzip"]),
        (gzip.compress(text[:5000]) + gzip.compress(text[5000:]), ["gzip"]),  # two members
        (gzip.compress(text) + bytes(20), ["x-gzip"]),  # padding after the member
        (text, []),
    ]:
        assert b"".join(decode(pieces(body, size), layers)) == text, layers


def test_decoding_is_lazy_and_bounded_per_step() -> None:
    """Each step yields at most CHUNK bytes, and pulls input only as output is taken."""
    bomb = gzip.compress(bytes(50_000_000))  # 50 KB
    pulled = []

    def body() -> Iterator[bytes]:
        for piece in pieces(bomb, 512):
            pulled.append(len(piece))
            yield piece

    decoded = decode(body(), ["gzip"])
    first = [next(decoded) for _ in range(10)]
    assert all(0 < len(chunk) <= CHUNK for chunk in first)
    assert sum(pulled) < len(bomb) // 10  # 640 KB of 50 MB out: that much input read
    twice = decode([gzip.compress(bomb)], ["gzip", "gzip"])  # 250 bytes
    assert all(0 < len(next(twice)) <= CHUNK for _ in range(10))


def test_encodings_header_parsing() -> None:
    assert encodings(["gzip, deflate", "identity", " GZIP "]) == ["gzip", "deflate", "gzip"]
    assert encodings([]) == []
    with pytest.raises(DecodingError, match="encoded 4 times"):
        encodings(["gzip, gzip", "gzip, gzip"])
    with pytest.raises(DecodingError, match="cannot decode content encoding `zstd`"):
        encodings(["zstd"])
    with pytest.raises(DecodingError, match="not valid gzip"):
        b"".join(decode([b"not gzip at all"], ["gzip"]))

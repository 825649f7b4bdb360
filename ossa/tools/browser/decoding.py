"""Content-Encoding decoders that stream, so that the size cap counts decoded bytes.

A decoder here never produces more than ``CHUNK`` bytes per step and only decodes as far
as its reader pulls: a 2 KB body encoded ``gzip, gzip`` that would expand to gigabytes is
decoded up to the size cap and no further. Layers are generators stacked in reverse order
of the header, so each layer pulls from the one beneath it a chunk at a time.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator

CHUNK = 64 * 1024
#: ``gzip, gzip`` is legal; more layers than this are an attack, not a page
MAX_LAYERS = 3
ACCEPT_ENCODING = "gzip, deflate"
_GZIP = 16 + zlib.MAX_WBITS


class DecodingError(ValueError):
    """A body that cannot be decoded as its Content-Encoding says."""


def encodings(header_values: Iterable[str]) -> list[str]:
    """The Content-Encoding layers in the order they were applied (identity dropped)."""
    layers = [token.strip().lower() for value in header_values for token in value.split(",")]
    layers = [layer for layer in layers if layer and layer != "identity"]
    if len(layers) > MAX_LAYERS:
        raise DecodingError(f"the body is encoded {len(layers)} times (at most {MAX_LAYERS})")
    for layer in layers:
        if layer not in ("gzip", "x-gzip", "deflate"):
            raise DecodingError(f"cannot decode content encoding `{layer[:40]}`")
    return layers


def decode(chunks: Iterable[bytes], layers: list[str]) -> Iterator[bytes]:
    """``chunks`` of the body as sent, decoded layer by layer, lazily, ``CHUNK`` at a time."""
    stream: Iterable[bytes] = chunks
    for layer in reversed(layers):
        stream = _inflate(stream, gzip=layer != "deflate")
    return iter(stream)


def _inflate(chunks: Iterable[bytes], *, gzip: bool) -> Iterator[bytes]:
    """One zlib layer. ``deflate`` is zlib-wrapped by the spec, but raw in some servers'."""
    chunks = iter(chunks)
    head = b""
    for data in chunks:  # enough bytes to tell a zlib header from raw deflate
        head += data
        if len(head) >= 2:
            break
    if not head:
        return
    wbits = _GZIP if gzip else zlib.MAX_WBITS if _zlib_header(head) else -zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    whole_members = 0
    try:
        for data in itertools.chain([head], chunks):
            while data:
                if decoder.eof:  # another gzip member follows; raw deflate has no members
                    if not gzip:
                        return
                    decoder = zlib.decompressobj(wbits)
                    whole_members += 1
                out = decoder.decompress(data, CHUNK)
                data = decoder.unconsumed_tail or decoder.unused_data
                if out:
                    yield out
        while not decoder.eof:  # output zlib still holds after the last input
            out = decoder.decompress(b"", CHUNK)
            if not out:
                return
            yield out
    except zlib.error as e:
        if whole_members:  # padding after a whole member: browsers ignore it too
            return
        raise DecodingError(f"the body is not valid {'gzip' if gzip else 'deflate'}: {e}") from e


def _zlib_header(head: bytes) -> bool:
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0

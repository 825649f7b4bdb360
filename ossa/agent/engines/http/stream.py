"""A server's event stream as a :class:`~ossa.model.stats.Generation` of token ids.

Each server family turns one streamed event into a :class:`Piece` (token ids when the server
sends them, else text; whether it was the last event; why it stopped; the server's counts).
This module does the rest the same way for all of them: text is tokenized by ossa's own
tokenizer (holding back the last token, which the next text may still extend), the stop token
is put back when a server strips it, usage is filled in as events arrive, and a stream that
ends without its final event, or stops at the server's own length limit, is an
:class:`~ossa.agent.engines.base.EngineError` rather than a completion that looks finished.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ossa.agent.engines.base import EngineError
from ossa.agent.engines.http.client import Server
from ossa.harmony import load_harmony_encoding
from ossa.model.stats import Generation, Stats

__all__ = ["Piece", "generation", "implied_stop"]


@dataclass
class Piece:
    """What one streamed event carries."""

    tokens: list[int] | None = None  # the server's token ids, when it sends them
    text: str = ""  # otherwise the text, tokenized here
    final: bool = False  # the server's last event for this completion
    finish: str | None = None  # "stop" (a stop token or EOS) or "length"
    stop_token: int | None = None  # the stop token, when the server says which
    prompt_tokens: int | None = None  # the server's count of the prompt
    cached_tokens: int | None = None  # of which it reused from its cache
    generated: int | None = None  # the server's count of the tokens it generated
    prefill_s: float | None = None
    decode_s: float | None = None


def generation(
    server: Server,
    path: str,
    body: dict[str, Any],
    parse: Callable[[Any], Piece | None],
    *,
    prompt_length: int,
    stop: Iterable[int],
    max_tokens: int,
) -> Generation:
    """Stream ``body`` to ``path``; ``parse`` reads each event (``None`` for the SSE end)."""
    usage = Stats(prefilled_tokens=prompt_length)
    tokens = _tokens(server, path, body, parse, usage, frozenset(stop), max_tokens, prompt_length)
    return Generation(tokens, usage)


def _tokens(
    server: Server,
    path: str,
    body: dict[str, Any],
    parse: Callable[[Any], Piece | None],
    usage: Stats,
    stop: frozenset[int],
    max_tokens: int,
    prompt_length: int,
) -> Iterator[int]:
    started = time.monotonic()
    first: float | None = None
    text = _Text()
    out: list[int] = []
    end = Piece()  # why it stopped and the server's timings, from whichever events say so
    stopped = ended = False
    events = server.stream(path, body)
    try:
        for event in events:
            piece = parse(event)
            if piece is None:
                continue
            _note(piece, end, usage, prompt_length)
            if stopped:  # after the stop token, read on only for the usage that follows it
                if piece.final or piece.tokens or piece.text:
                    ended = True
                    break
                continue
            ids = piece.tokens if piece.tokens is not None else text.feed(piece.text)
            if piece.final and piece.tokens is None:
                ids = ids + text.flush()
            for token in ids:
                if first is None:
                    first = time.monotonic()
                    usage.prefill_s = first - started
                out.append(token)
                usage.generated_tokens += 1
                yield token
                if token in stop:
                    stopped = True
                    break
            if piece.final:
                ended = True
                break
    except EngineError:
        if not stopped:  # a failure after the stop token costs only the usage counts
            raise
    finally:
        events.close()
        usage.decode_s = time.monotonic() - (first or started)
        if end.prefill_s is not None:
            usage.prefill_s = end.prefill_s
        if end.decode_s is not None:
            usage.decode_s = end.decode_s
    if stopped:
        return
    if not ended:
        raise EngineError(
            f"the stream from {server.base_url} was cut before the completion ended "
            f"(after {len(out)} tokens)"
        )
    generated = len(out) if end.generated is None else end.generated  # text may count apart
    if end.finish == "length" and generated < max_tokens:
        raise EngineError(
            f"{server.base_url} stopped at its own length limit after {len(out)} tokens "
            "(the prompt and answer fill the context it serves; start it with a larger one)"
        )
    if end.finish == "stop":  # the server stopped on a stop token it did not send
        usage.generated_tokens += 1
        yield end.stop_token if end.stop_token in stop else implied_stop(out)


def _note(piece: Piece, end: Piece, usage: Stats, prompt_length: int) -> None:
    """Keep what a piece says about the whole call; the server's cache says what was reused."""
    if piece.finish is not None:
        end.finish, end.stop_token = piece.finish, piece.stop_token
    if piece.generated is not None:
        end.generated = piece.generated
    if piece.prefill_s is not None:
        end.prefill_s = piece.prefill_s
    if piece.decode_s is not None:
        end.decode_s = piece.decode_s
    if piece.cached_tokens is not None:
        total = prompt_length if piece.prompt_tokens is None else piece.prompt_tokens
        usage.reused_tokens = min(piece.cached_tokens, total)
        usage.prefilled_tokens = total - usage.reused_tokens


def implied_stop(completion: list[int]) -> int:
    """The stop token a stripped completion ended with, read from its last message's header.

    In harmony a message addressed to a tool (``to=`` in its header) ends with ``<|call|>``
    and any other last message with ``<|return|>``: servers that strip stop text (or report
    only "stop") leave ossa to restore it this way.
    """
    encoding = load_harmony_encoding()
    special = {name: encoding.encode(name, allowed_special="all")[0] for name in _MARKERS}
    header_end = max(
        (i for i, t in enumerate(completion) if t == special["<|message|>"]), default=-1
    )
    header_start = max(
        (i for i, t in enumerate(completion[:header_end]) if t == special["<|start|>"]), default=0
    )
    header = encoding.decode(completion[header_start:header_end]) if header_end >= 0 else ""
    return special["<|call|>"] if "to=" in header else special["<|return|>"]


_MARKERS = ("<|message|>", "<|start|>", "<|call|>", "<|return|>")


class _Text:
    """Streamed text to token ids: the text up to the last word boundary is final.

    BPE merges never cross o200k's pre-token boundaries, and a word (with its leading space)
    or a special token is such a piece, so the text before the last run of whitespace, or
    up to the last complete special token, tokenizes the same whatever follows; the rest
    waits for more text. (A few pre-tokens do swallow a following newline, like ``.\n``:
    there the ids may differ from the server's, which costs prefix reuse, never text.)
    """

    def __init__(self) -> None:
        self._encoding = load_harmony_encoding()
        self._specials = frozenset(self._encoding.special_tokens_set)
        self._pending = ""

    def feed(self, text: str) -> list[int]:
        whole = self._pending + text
        cut = max(self._after_special(whole), _last_space_run(whole))
        self._pending = whole[cut:]
        return self._encoding.encode(whole[:cut], allowed_special="all") if cut else []

    def flush(self) -> list[int]:
        ids = self._encoding.encode(self._pending, allowed_special="all") if self._pending else []
        self._pending = ""
        return ids

    def _after_special(self, text: str) -> int:
        """Where the last complete special token ends (0 if there is none)."""
        end = text.rfind("|>")
        while end >= 0:
            start = text.rfind("<|", 0, end)
            if start >= 0 and text[start : end + 2] in self._specials:
                return end + 2
            end = text.rfind("|>", 0, end)
        return 0


def _last_space_run(text: str) -> int:
    """Where the last run of whitespace starts (0 if there is none)."""
    match = _SPACE_RUN.search(text)
    return match.start() if match else 0


_SPACE_RUN = re.compile(r"\s+(?=\S*$)")

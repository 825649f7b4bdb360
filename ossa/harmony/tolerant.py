"""The tolerant parser: openai-harmony's state machine, recovering where it would raise.

gpt-oss does not always write the grammar. ``TolerantParser`` overrides the strict parser's
hooks so that it never raises on model output and loses nothing:

* a header without ``<|message|>`` (a refusal), anywhere in the stream, becomes a message
  whose text is the header's words; a message cut off by the end of the completion is kept
  with ``incomplete=True``;
* a forgotten ``<|end|>`` before ``<|start|>`` or ``<|channel|>`` ends the message there;
  stray stop tokens are skipped; text after ``<|end|>`` without ``<|start|>`` is a new
  message of the same speaker; other control tokens are never decoded into text;
* an id outside the vocabulary becomes U+FFFD, as openai-harmony marks it, and the text
  after it still decodes (a value that is no u32 at all is refused with OverflowError, as
  there: it is a caller's bug, not model output);
* headers are read in any order gpt-oss writes them (``parse_header_tolerant``); a word that
  fits nowhere is kept in the message's ``header_rest``, never dropped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ossa.harmony import tokenizer as tk
from ossa.harmony.builtin_tools import BROWSER_NAME, PYTHON_NAME
from ossa.harmony.headers import (
    CHANNEL_MARKER,
    CONSTRAIN_MARKER,
    ROLE_WORDS,
    RUST_WHITESPACE,
    Header,
)
from ossa.harmony.messages import DEFAULT_CHANNELS, Role
from ossa.harmony.parser import STOP_TOKENS, StreamableParser, StreamState

if TYPE_CHECKING:
    from ossa.harmony.encoding import HarmonyEncoding

START_MARKER = "<|start|>"
# Bare words that name a content type, never a recipient.
CONTENT_TYPE_WORDS = frozenset({"json", "code"})
CHANNEL_WORDS = frozenset(DEFAULT_CHANNELS)
_CONSTRAIN_SPACE = re.compile(re.escape(CONSTRAIN_MARKER) + r"\s*")  # "<|constrain|> json" too
_CONSTRAINT = re.compile(re.escape(CONSTRAIN_MARKER) + r"\S*")
# A channel name ends where openai-harmony ends it, and at a U+FFFD (an unknown id or bad
# bytes), which then stays visible as a word of its own.
_CHANNEL_END = re.compile("[" + re.escape(RUST_WHITESPACE) + "<\ufffd]")
# Specials that carry header structure; every other control token is skipped.
_HEADER_SPECIALS = frozenset({tk.CHANNEL, tk.CONSTRAIN})
# Specials that can open a message whose "<|start|>role" was left out.
_MESSAGE_STARTERS = frozenset({tk.CHANNEL, tk.CONSTRAIN, tk.MESSAGE})
_REPLACEMENT = "\ufffd".encode()


class TolerantParser(StreamableParser):
    """``StreamableParser(encoding, role, strict=False)``: never raises on model output."""

    strict = False

    def __init__(
        self, encoding: HarmonyEncoding, role: Role | None, *, strict: bool = False
    ) -> None:
        super().__init__(encoding, role)
        self._default_role = self._next_role or Role.ASSISTANT

    # -- hooks ----------------------------------------------------------------------------

    def _content_other(self, token: int) -> None:
        """A control token or unknown id inside content."""
        self.last_content_delta = None
        if token == tk.START:  # the message ended without its stop token
            self._finish()
            self._start_header(None)
        elif token == tk.CHANNEL:  # ... and without <|start|>role
            role = self.current_role
            self._finish()
            self._start_header(role)
            self._header_tokens.append(token)
        elif not self._tokenizer.is_valid(token):
            delta = self._pending.decode("utf-8", errors="replace") + "\ufffd"
            self._pending = b""
            self._parts.append(delta)
            self.last_content_delta = delta

    def _header_token(self, token: int) -> None:
        if token in STOP_TOKENS:
            self._recover_headerless(incomplete=False)
        elif token == tk.START:
            if self._header_text().strip():
                self._recover_headerless(incomplete=False)
            self._start_header(self._next_role)
        elif (
            0 <= token < tk.FIRST_SPECIAL
            or token in _HEADER_SPECIALS
            or not self._tokenizer.is_valid(token)
        ):
            self._header_tokens.append(token)

    def _stray_token(self, token: int) -> None:
        """Text or a header marker with no ``<|start|>``: a new message of the same speaker."""
        if token in STOP_TOKENS or (
            self._tokenizer.is_special_token(token) and token not in _MESSAGE_STARTERS
        ):
            return
        self._start_header(self._default_role)
        if token == tk.MESSAGE:
            self._end_header()
        else:
            self._header_tokens.append(token)

    def _parse_header(self) -> Header:
        return parse_header_tolerant(self._header_text(), self._next_role, self._default_role)

    def _eos_in_content(self) -> None:
        self._finish().incomplete = True

    def _eos_in_header(self) -> None:
        self._recover_headerless(incomplete=True)

    # -- recovery -------------------------------------------------------------------------

    def _header_text(self) -> str:
        table, valid = self._token_bytes, self._tokenizer.is_valid
        data = b"".join([table[t] if valid(t) else _REPLACEMENT for t in self._header_tokens])
        return data.decode("utf-8", errors="replace")

    def _recover_headerless(self, incomplete: bool) -> None:
        """A header that ended before ``<|message|>``: keep its words as the message text."""
        text = self._header_text()
        if text.strip():
            header, body = recover_headerless(text, self._next_role, self._default_role)
            self._append(header, body).incomplete = incomplete
        self._start_header(None)
        self.state = StreamState.EXPECT_START


# -- tolerant headers ---------------------------------------------------------------------


def parse_header_tolerant(text: str, role: Role | None, default_role: Role) -> Header:
    """The header of a message that has ``<|message|>``; never raises, never drops a word.

    The recipient may come before or after the channel (or both); ``<|constrain|>X`` or a
    bare ``json``/``code`` is the content type, kept as written and never a recipient; a
    channel name is a channel, never a content type; ``functions.browser.*`` and
    ``functions.python`` are the built-in tools. A word that fits nowhere (a second,
    different channel, recipient or content type, one more bare word, a word with U+FFFD
    from an unknown id) goes to ``Header.rest`` as written.
    """
    channels, text = _take_channels(text.replace(START_MARKER, " "))
    role, name, text = _split_role(text, role, default_role, guess_tool=True)
    recipients: list[tuple[str, str]] = []  # (value, the word as written)
    types: list[tuple[str, str]] = []
    bare: list[str] = []
    rest: list[str] = []
    for word in _CONSTRAIN_SPACE.sub(" " + CONSTRAIN_MARKER, text).split():
        if "\ufffd" in word or word == "to=":
            rest.append(word)
        elif word.startswith("to="):
            recipients.append((builtin_recipient(word[3:]), word))
        elif word.startswith(CONSTRAIN_MARKER) or word in CONTENT_TYPE_WORDS:
            types.append((word, word))
        elif word in CHANNEL_WORDS:
            channels.append((word, word))
        elif word != role.value:
            bare.append(word)
    # gpt-oss sometimes drops the "to=": as openai-harmony reads bare words, a lone one is the
    # recipient, and of two the last is the content type.
    if not recipients and bare:
        if not types and len(bare) > 1:
            word = bare.pop()
            types.append((word, word))
        word = bare.pop()
        recipients.append((builtin_recipient(word), word))
    if not types and bare:
        word = bare.pop()
        types.append((word, word))
    rest += bare + _others(channels) + _others(recipients) + _others(types)
    return Header(
        role,
        name,
        recipient=_first(recipients),
        channel=_first(channels),
        content_type=_first(types),
        rest=" ".join(rest) if rest else None,
    )


def recover_headerless(text: str, role: Role | None, default_role: Role) -> tuple[Header, str]:
    """A message that ended before ``<|message|>`` (a refusal): role, channel, then its text."""
    channels, text = _take_channels(text.replace(START_MARKER, " "))
    role, name, text = _split_role(text, role, default_role, guess_tool=False)
    # <|constrain|>X is header, never text: the first is the content type, as written.
    types = [(word, word) for word in _CONSTRAINT.findall(text)]
    others = _others(channels) + _others(types)
    header = Header(
        role,
        name,
        channel=_first(channels),
        content_type=_first(types),
        rest=" ".join(others) if others else None,
    )
    return header, _CONSTRAINT.sub("", text).strip()


def builtin_recipient(recipient: str) -> str:
    """``functions.browser.search`` -> ``browser.search``; ``functions.python`` -> ``python``."""
    if recipient.startswith("functions."):
        rest = recipient[len("functions.") :]
        if rest == PYTHON_NAME or rest.startswith(BROWSER_NAME + "."):
            return rest
    return recipient


def _first(found: list[tuple[str, str]]) -> str | None:
    return found[0][0] if found else None


def _others(found: list[tuple[str, str]]) -> list[str]:
    """The words after the first that say something else (a repeat loses nothing)."""
    if not found:
        return []
    seen = {found[0][0]}
    out = []
    for value, word in found[1:]:
        if value not in seen:
            seen.add(value)
            out.append(word)
    return out


def _take_channels(text: str) -> tuple[list[tuple[str, str]], str]:
    """Cut out every ``<|channel|>NAME``: (name, as written) in order; an empty one names none."""
    found = []
    pieces = text.split(CHANNEL_MARKER)
    kept = [pieces[0]]
    for piece in pieces[1:]:
        match = _CHANNEL_END.search(piece)
        end = match.start() if match else len(piece)
        if end:
            found.append((piece[:end], CHANNEL_MARKER + piece[:end]))
        kept.append(" " + piece[end:])
    return found, "".join(kept)


def _split_role(
    text: str, role: Role | None, default_role: Role, guess_tool: bool
) -> tuple[Role, str | None, str]:
    """Read a leading role word (``assistant``, ``user:alice``, a tool's name) if there is one."""
    stripped = text.lstrip()
    word = stripped.split(maxsplit=1)[0] if stripped else ""
    rest = stripped[len(word) :]
    base, _, name = word.partition(":")
    if base in ROLE_WORDS:
        return Role(base), name or None, rest
    if guess_tool and role is None and word and not word.startswith(("to=", CONSTRAIN_MARKER)):
        return Role.TOOL, word, rest  # a tool result's header starts with the tool name
    return role or default_role, None, text

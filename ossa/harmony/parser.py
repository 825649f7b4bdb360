"""The streaming harmony parser: one token at a time, O(1) work per content token.

Strict mode reproduces openai-harmony 0.0.8 exactly, errors included. Tolerant mode (the
default) never raises and recovers what the library loses: headers without
``<|message|>`` anywhere in the stream, stray or repeated control tokens, a message cut off
by the end of the completion (returned with ``incomplete=True``), and control tokens are
never decoded into text.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from ossa.harmony import headers
from ossa.harmony import tokenizer as tk
from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import Author, Message, Role, TextContent

if TYPE_CHECKING:
    from ossa.harmony.encoding import HarmonyEncoding

STOP_TOKENS = frozenset({tk.RETURN, tk.END, tk.CALL})
# Specials that carry header structure; every other special is dropped by the tolerant parser.
_HEADER_SPECIALS = frozenset({tk.CHANNEL, tk.CONSTRAIN})


class StreamState(Enum):
    EXPECT_START = "ExpectStart"
    HEADER = "Header"
    CONTENT = "Content"


class StreamableParser:
    """Feed completion tokens with ``process``; read the getters after any of them.

    Create it with the role the prompt ended on (``Role.ASSISTANT`` after
    ``<|start|>assistant``), or None when the tokens begin with ``<|start|>``.
    """

    def __init__(
        self, encoding: HarmonyEncoding, role: Role | None, *, strict: bool = False
    ) -> None:
        self.strict = strict
        self.tokens: list[int] = []
        self.messages: list[Message] = []
        self.state = StreamState.HEADER if role is not None else StreamState.EXPECT_START
        self.last_content_delta: str | None = None
        self._tokenizer = encoding.tokenizer
        self._token_bytes = encoding.tokenizer.token_bytes
        self._next_role = Role(role) if role is not None else None
        self._default_role = self._next_role or Role.ASSISTANT
        self._header_tokens: list[int] = []
        self._header: headers.Header | None = None
        self._parts: list[str] = []  # decoded content of the current message
        self._pending = b""  # bytes of an unfinished UTF-8 sequence
        self._bad_tokens: list[int] = []  # strict: content from an unknown id on, never decoded

    # -- getters --------------------------------------------------------------------------

    @property
    def current_role(self) -> Role | None:
        return self._header.author.role if self._header is not None else self._next_role

    @property
    def current_channel(self) -> str | None:
        return self._header.channel if self._header is not None else None

    @property
    def current_recipient(self) -> str | None:
        return self._header.recipient if self._header is not None else None

    @property
    def current_content_type(self) -> str | None:
        return self._header.content_type if self._header is not None else None

    @property
    def current_content(self) -> str:
        parts = self._parts
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""

    # -- feeding --------------------------------------------------------------------------

    def process(self, token: int) -> StreamableParser:
        self.tokens.append(token)
        if self.state is StreamState.CONTENT:
            if 0 <= token < tk.FIRST_SPECIAL and not self._bad_tokens:
                self._content_token(token)
            elif token in STOP_TOKENS:
                self._finish(incomplete=False)
            elif self.strict:
                self._content_token_strict(token)
            else:
                self._content_control_tolerant(token)
        elif self.state is StreamState.HEADER:
            self._header_token(token)
        elif token == tk.START:
            self._start_header(None)
        elif self.strict:
            raise HarmonyError(f"Unexpected token {token} while expecting start token {tk.START}")
        elif 0 <= token < tk.FIRST_SPECIAL or token in _HEADER_SPECIALS or token == tk.MESSAGE:
            # Text or a header marker with no <|start|>: a new message of the same speaker.
            self._start_header(self._default_role)
            self._header_token(token)
        return self

    def process_eos(self) -> StreamableParser:
        if self.state is StreamState.CONTENT:
            self._finish(incomplete=not self.strict)
        elif self.state is StreamState.HEADER:
            if self.strict:
                raise HarmonyError("Unexpected EOS while waiting for message header to complete")
            self._recover_headerless(incomplete=True)
        return self

    # -- content --------------------------------------------------------------------------

    def _content_token(self, token: int) -> None:
        data = self._token_bytes[token]
        if self._pending:
            data = self._pending + data
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            self._decode_partial(data, exc)
            return
        self._pending = b""
        self._parts.append(text)
        self.last_content_delta = text

    def _decode_partial(self, data: bytes, exc: UnicodeDecodeError) -> None:
        """Emit the valid prefix; replace one bad sequence; keep the rest for the next token.

        This is openai-harmony's incremental decoder, byte for byte.
        """
        delta = data[: exc.start].decode()
        rest = data[exc.start :]
        if exc.reason == "unexpected end of data":
            self.last_content_delta = None
        else:
            delta += "\ufffd"
            rest = rest[exc.end - exc.start :]
        self._pending = rest
        if delta:
            self._parts.append(delta)
            self.last_content_delta = delta

    def _content_token_strict(self, token: int) -> None:
        """A special or unknown id inside content: openai-harmony decodes it as text."""
        if self._bad_tokens or not self._tokenizer.is_valid(token):
            self._bad_tokens.append(token)
            self.last_content_delta = None
        else:
            self._content_token(token)

    def _content_control_tolerant(self, token: int) -> None:
        """A control token inside content: the message ended without its stop token."""
        self.last_content_delta = None
        if token == tk.START:
            self._finish(incomplete=False)
            self._start_header(None)
        elif token == tk.CHANNEL:
            role = self.current_role
            self._finish(incomplete=False)
            self._start_header(role)
            self._header_tokens.append(token)

    def _finish(self, incomplete: bool) -> None:
        text = self.current_content
        if self._bad_tokens:
            text += "\ufffd"
        text += self._pending.decode("utf-8", errors="replace")
        header = self._header
        assert header is not None
        self._append(header, text, incomplete)

    def _append(self, header: headers.Header, text: str, incomplete: bool) -> None:
        author = Author(header.author.role, header.author.name)
        self.messages.append(
            Message(
                author=author,
                content=[TextContent(text=text)],
                channel=header.channel,
                recipient=header.recipient,
                content_type=header.content_type,
                incomplete=incomplete,
            )
        )
        self._reset(StreamState.EXPECT_START)

    def _reset(self, state: StreamState) -> None:
        self.state = state
        self.last_content_delta = None
        self._header = None
        self._header_tokens = []
        self._parts = []
        self._pending = b""
        self._bad_tokens = []

    # -- header ---------------------------------------------------------------------------

    def _start_header(self, role: Role | None) -> None:
        self._reset(StreamState.HEADER)
        self._next_role = role

    def _header_token(self, token: int) -> None:
        if token == tk.MESSAGE:
            self.state = StreamState.EXPECT_START  # where a header error leaves the parser
            self._header = self._parse_header()
            self._next_role = None
            self.state = StreamState.CONTENT
        elif self.strict:
            self._header_tokens.append(token)
        elif token in STOP_TOKENS:
            self._recover_headerless(incomplete=False)
        elif token == tk.START:
            if self._header_text().strip():
                self._recover_headerless(incomplete=False)
            self._start_header(self._next_role)
        elif 0 <= token < tk.FIRST_SPECIAL or token in _HEADER_SPECIALS:
            self._header_tokens.append(token)

    def _header_text(self) -> str:
        return self._tokenizer.decode_bytes(self._header_tokens).decode("utf-8", errors="replace")

    def _parse_header(self) -> headers.Header:
        if not self.strict:
            return headers.parse_header_tolerant(
                self._header_text(), self._next_role, self._default_role
            )
        try:
            text = self._tokenizer.decode_bytes(self._header_tokens).decode()
        except (HarmonyError, UnicodeDecodeError):
            raise HarmonyError("could not decode header") from None
        return headers.header_from_text_strict(text, self._next_role)

    def _recover_headerless(self, incomplete: bool) -> None:
        """A header that ended before ``<|message|>``: keep its words as the message text."""
        text = self._header_text()
        if text.strip():
            header, body = headers.recover_headerless(text, self._next_role, self._default_role)
            self._append(header, body, incomplete)
        self._start_header(None)
        self.state = StreamState.EXPECT_START


def parse_completion(
    encoding: HarmonyEncoding, tokens: list[int], role: Role | None, strict: bool
) -> list[Message]:
    """Parse a whole completion (without its prompt) into messages."""
    parser = StreamableParser(encoding, role, strict=strict)
    for token in tokens:
        parser.process(token)
    parser.process_eos()
    return parser.messages

"""The streaming harmony parser: one token at a time, O(1) work per content token.

``StreamableParser`` is openai-harmony 0.0.8's state machine (ExpectStart, Header, Content),
errors and quirks included. Every place where malformed output can meet it is a hook
method; ``ossa.harmony.tolerant.TolerantParser`` overrides those hooks to recover instead of
raising. ``StreamableParser(encoding, role, strict=False)`` builds the tolerant one, so the
openai-harmony call keeps working and selects ossa's mode.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from ossa.harmony import headers
from ossa.harmony import tokenizer as tk
from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import Author, Message, Role, TextContent

if TYPE_CHECKING:
    from ossa.harmony.encoding import HarmonyEncoding

STOP_TOKENS = frozenset(tk.STOP_TOKENS)
_FIRST_SPECIAL = tk.FIRST_SPECIAL


class StreamState(Enum):
    EXPECT_START = "ExpectStart"
    HEADER = "Header"
    CONTENT = "Content"


_CONTENT = StreamState.CONTENT


class StreamableParser:
    """Feed completion tokens with ``process``; read the getters after any of them.

    Create it with the role the prompt ended on (``Role.ASSISTANT`` after
    ``<|start|>assistant``), or None when the tokens begin with ``<|start|>``. Strict by
    default, as openai-harmony; ``strict=False`` gives the tolerant parser.
    """

    strict = True

    def __new__(
        cls, encoding: HarmonyEncoding, role: Role | None, *, strict: bool = True
    ) -> StreamableParser:
        if cls is StreamableParser and not strict:
            from ossa.harmony.tolerant import TolerantParser  # it extends this module

            cls = TolerantParser
        return super().__new__(cls)

    def __init__(
        self, encoding: HarmonyEncoding, role: Role | None, *, strict: bool = True
    ) -> None:
        self.tokens: list[int] = []
        self.messages: list[Message] = []
        self.state = StreamState.HEADER if role is not None else StreamState.EXPECT_START
        self.last_content_delta: str | None = None
        self._tokenizer = encoding.tokenizer
        self._token_bytes = encoding.tokenizer.token_bytes
        self._next_role = Role(role) if role is not None else None
        self._header_tokens: list[int] = []
        self._header: headers.Header | None = None
        self._parts: list[str] = []  # the current message's deltas, as emitted
        self._joined = ""  # the text of _parts[:_joined_count], joined once for the getter
        self._joined_count = 0
        self._pending = b""  # bytes of an unfinished UTF-8 sequence
        self._bad_tokens: list[int] = []  # content from an unknown id on, never decoded

    # -- getters --------------------------------------------------------------------------

    @property
    def current_role(self) -> Role | None:
        return self._header.role if self._header is not None else self._next_role

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
        if self._joined_count < len(parts):
            self._joined += "".join(parts[self._joined_count :])
            self._joined_count = len(parts)
        return self._joined

    @property
    def state_data(self) -> dict[str, Any]:
        """openai-harmony's JSON view of the state (``content_tokens``: each delta encoded)."""
        if self.state is StreamState.HEADER:
            return {"state": "Header", "header_tokens": list(self._header_tokens)}
        if self.state is StreamState.EXPECT_START:
            return {"state": "ExpectStart"}
        header = self._header
        assert header is not None
        author: dict[str, Any] = {"role": header.role.value}
        if header.name is not None:
            author["name"] = header.name
        encode = self._tokenizer.encode_ordinary
        return {
            "state": "Content",
            "header": {
                "author": author,
                "recipient": header.recipient,
                "channel": header.channel,
                "content_type": header.content_type,
            },
            "content_tokens": [t for part in self._parts for t in encode(part)],
        }

    # -- the state machine ----------------------------------------------------------------

    def process(self, token: int) -> StreamableParser:
        if self.state is _CONTENT and 0 <= token < _FIRST_SPECIAL and not self._bad_tokens:
            self.tokens.append(token)  # text inside content: nearly every token, kept short
            self._content_token(token)
        else:
            self._process_other(token)
        return self

    def _process_other(self, token: int) -> None:
        if not 0 <= token < _FIRST_SPECIAL:
            tk.check_u32(token)  # openai-harmony refuses it before recording it
        self.tokens.append(token)
        if self.state is StreamState.CONTENT:
            if token in STOP_TOKENS:
                self._finish()
            else:
                self._content_other(token)
        elif self.state is StreamState.HEADER:
            if token == tk.MESSAGE:
                self._end_header()
            else:
                self._header_token(token)
        elif token == tk.START:
            self._start_header(None)
        else:
            self._stray_token(token)

    def process_eos(self) -> StreamableParser:
        if self.state is StreamState.CONTENT:
            self._eos_in_content()
        elif self.state is StreamState.HEADER:
            self._eos_in_header()
        return self

    # -- hooks: what malformed output meets; openai-harmony's answers ---------------------

    def _content_other(self, token: int) -> None:
        """A special or unknown id inside content: decoded as text; from an unknown id on,
        nothing decodes and the message ends with one U+FFFD."""
        if self._bad_tokens or not self._tokenizer.is_valid(token):
            self._bad_tokens.append(token)
            self.last_content_delta = None
        else:
            self._content_token(token)

    def _header_token(self, token: int) -> None:
        """Any token but ``<|message|>`` in a header (stop tokens too) is part of it."""
        self._header_tokens.append(token)

    def _stray_token(self, token: int) -> None:
        """A token where a message must start."""
        raise HarmonyError(f"Unexpected token {token} while expecting start token {tk.START}")

    def _parse_header(self) -> headers.Header:
        try:
            text = self._tokenizer.decode_bytes(self._header_tokens).decode()
        except (HarmonyError, UnicodeDecodeError):
            raise HarmonyError("could not decode header") from None
        return headers.header_from_text_strict(text, self._next_role)

    def _eos_in_content(self) -> None:
        self._finish()

    def _eos_in_header(self) -> None:
        raise HarmonyError("Unexpected EOS while waiting for message header to complete")

    # -- shared steps ---------------------------------------------------------------------

    def _end_header(self) -> None:
        self.state = StreamState.EXPECT_START  # where a header error leaves the parser
        self._header = self._parse_header()
        self._next_role = None
        self.state = StreamState.CONTENT

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

        This is openai-harmony's incremental decoder, byte for byte (and piece for piece,
        which ``state_data`` shows).
        """
        pieces = [data[: exc.start].decode()] if exc.start else []
        rest = data[exc.start :]
        if exc.reason != "unexpected end of data":
            pieces.append("\ufffd")
            rest = rest[exc.end - exc.start :]
        self._pending = rest
        self._parts += pieces
        self.last_content_delta = "".join(pieces) if pieces else None

    def _finish(self) -> Message:
        """End the current message (a stop token or EOS) and return it."""
        text = self.current_content
        if self._bad_tokens:
            text += "\ufffd"
        text += self._pending.decode("utf-8", errors="replace")
        header = self._header
        assert header is not None
        return self._append(header, text)

    def _append(self, header: headers.Header, text: str) -> Message:
        message = Message(
            author=Author(role=header.role, name=header.name),
            content=[TextContent(text=text)],
            channel=header.channel,
            recipient=header.recipient,
            content_type=header.content_type,
            header_rest=header.rest,
        )
        self.messages.append(message)
        self._reset(StreamState.EXPECT_START)
        return message

    def _reset(self, state: StreamState) -> None:
        self.state = state
        self.last_content_delta = None
        self._header = None
        self._header_tokens = []
        self._parts = []
        self._joined = ""
        self._joined_count = 0
        self._pending = b""
        self._bad_tokens = []

    def _start_header(self, role: Role | None) -> None:
        self._reset(StreamState.HEADER)
        self._next_role = role


def parse_completion(
    encoding: HarmonyEncoding, tokens: list[int], role: Role | None, strict: bool
) -> list[Message]:
    """Parse a whole completion (without its prompt) into messages."""
    parser = StreamableParser(encoding, role, strict=strict)
    for token in tokens:
        parser.process(token)
    parser.process_eos()
    return parser.messages

"""Parsing a message header (the text between ``<|start|>`` and ``<|message|>``).

``parse_header_strict`` is openai-harmony 0.0.8's algorithm, errors and quirks included.
``parse_header_tolerant`` reads the shapes gpt-oss really emits: the recipient before or
after the channel (or both), ``<|constrain|>json`` or a bare ``json`` as the content type
(never a recipient), ``functions.browser.*``/``functions.python`` as the built-in tools, a
repeated ``<|start|>``, role names (``user:alice``) and tool results without ``to=``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import Author, Role

CHANNEL_MARKER = "<|channel|>"
CONSTRAIN_MARKER = "<|constrain|>"
START_MARKER = "<|start|>"
ROLE_WORDS = frozenset(r.value for r in Role)
# Bare words that name a content type, never a recipient, in tolerant mode.
CONTENT_TYPE_WORDS = frozenset({"json", "code"})

# Unicode White_Space, as Rust's char::is_whitespace and str::trim use it.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_CHANNEL_END = re.compile("[" + re.escape(RUST_WHITESPACE) + "<]")
_ASCII_WHITESPACE = re.compile("[ \t\n\x0c\r]+")
_CONSTRAINT = re.compile(re.escape(CONSTRAIN_MARKER) + r"\S*")
_CONSTRAIN_SPACE = re.compile(re.escape(CONSTRAIN_MARKER) + r"\s*")  # "<|constrain|> json" too


@dataclass
class Header:
    author: Author
    recipient: str | None = None
    channel: str | None = None
    content_type: str | None = None


def split_ascii_whitespace(text: str) -> list[str]:
    return [w for w in _ASCII_WHITESPACE.split(text) if w]


def rust_debug_str(text: str) -> str:
    """Rust's ``{:?}`` for a str: quotes and escapes as the library's error texts show them."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif not ch.isprintable() or unicodedata.category(ch) in ("Mn", "Me"):
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _take_channel(text: str) -> tuple[str | None, str]:
    """Cut the first ``<|channel|>NAME`` out of the text (openai-harmony's rule)."""
    i = text.find(CHANNEL_MARKER)
    if i < 0:
        return None, text
    after = text[i + len(CHANNEL_MARKER) :]
    match = _CHANNEL_END.search(after)
    end = match.start() if match else len(after)
    if end == 0:
        raise HarmonyError("channel marker present but no channel value found in header")
    return after[:end], text[:i] + after[end:]


def parse_header_strict(
    text: str, role: Role | None, parse_recipient_and_type: bool = True
) -> tuple[Header, str | None]:
    """openai-harmony's ``parse_header_from_string``: the header and any leftover words."""
    channel, text = _take_channel(text)
    text = text.strip(RUST_WHITESPACE)
    if CONSTRAIN_MARKER in text:
        text = text.replace(CONSTRAIN_MARKER, " " + CONSTRAIN_MARKER).strip(RUST_WHITESPACE)
    parts = split_ascii_whitespace(text)
    role_word = None
    if role is None:
        if not parts:
            raise HarmonyError("message header did not contain a role")
        role_word = parts[0]
        if role_word in ROLE_WORDS:
            role = Role(role_word)
        elif len(parts) > 1 or role_word.startswith("to="):
            parts.pop(0)
            role = Role.TOOL
        else:
            raise HarmonyError(f"Unknown role: {role_word}")
    if parts and parts[0] == role.value:
        parts.pop(0)
    recipient = content_type = None
    if parse_recipient_and_type and parts:
        count = len(parts)
        last = parts.pop()
        if last.startswith("to="):
            recipient = last[3:]
        elif count == 1:
            recipient = last
        else:
            content_type = last
            if parts:
                raw = parts.pop()
                recipient = raw[3:] if raw.startswith("to=") else raw
    rest = " ".join(parts) if parts else None
    author = Author(role, role_word if role is Role.TOOL else None)
    return Header(author, recipient, channel, content_type), rest


def header_from_text_strict(text: str, role: Role | None) -> Header:
    header, rest = parse_header_strict(text, role)
    if rest is not None:
        raise HarmonyError(
            f"unexpected tokens remaining in message header: Some({rust_debug_str(rest)})"
        )
    return header


def _split_role(
    text: str, role: Role | None, default_role: Role, guess_tool: bool
) -> tuple[Author, str]:
    """Read a leading role word (``assistant``, ``user:alice``, a tool's name) if there is one."""
    stripped = text.lstrip()
    word = stripped.split(maxsplit=1)[0] if stripped else ""
    rest = stripped[len(word) :]
    base, _, name = word.partition(":")
    if base in ROLE_WORDS:
        return Author(Role(base), name or None), rest
    if guess_tool and role is None and word and not word.startswith(("to=", CONSTRAIN_MARKER)):
        return Author(Role.TOOL, word), rest  # a tool result's header starts with the tool name
    return Author(role or default_role), text


def _take_channels(text: str) -> tuple[str | None, str]:
    """Remove every ``<|channel|>NAME``; the first non-empty name is the channel."""
    channel = None
    pieces = text.split(CHANNEL_MARKER)
    kept = [pieces[0]]
    for piece in pieces[1:]:
        match = _CHANNEL_END.search(piece)
        end = match.start() if match else len(piece)
        if channel is None and end > 0:
            channel = piece[:end]
        kept.append(" " + piece[end:])
    return channel, "".join(kept)


def builtin_recipient(recipient: str) -> str:
    """``functions.browser.search`` -> ``browser.search``; ``functions.python`` -> ``python``."""
    if recipient.startswith("functions."):
        rest = recipient[len("functions.") :]
        if rest == "python" or rest.startswith("browser."):
            return rest
    return recipient


def parse_header_tolerant(text: str, role: Role | None, default_role: Role) -> Header:
    """The header of a message that has ``<|message|>``; never raises."""
    channel, text = _take_channels(text.replace(START_MARKER, " "))
    author, text = _split_role(text, role, default_role, guess_tool=True)
    recipient = content_type = None
    bare = []
    for word in _CONSTRAIN_SPACE.sub(" " + CONSTRAIN_MARKER, text).split():
        if word.startswith("to="):
            recipient = word[3:] or recipient
        elif word.startswith(CONSTRAIN_MARKER) or word in CONTENT_TYPE_WORDS:
            content_type = word
        elif word != author.role.value:
            bare.append(word)
    # gpt-oss sometimes drops the "to=": a lone bare word is the recipient, as in openai-harmony,
    # and a bare word beside a recipient is the content type.
    if recipient is None and bare:
        recipient = bare.pop()
    if content_type is None and bare:
        content_type = bare.pop()
    if recipient is not None:
        recipient = builtin_recipient(recipient)
    return Header(author, recipient, channel, content_type)


def recover_headerless(text: str, role: Role | None, default_role: Role) -> tuple[Header, str]:
    """A message that ended before ``<|message|>`` (a refusal): role and channel, then text."""
    channel, text = _take_channels(text.replace(START_MARKER, " "))
    author, text = _split_role(text, role, default_role, guess_tool=False)
    return Header(author, channel=channel), _CONSTRAINT.sub("", text).strip()

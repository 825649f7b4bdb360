"""Parsing a message header (the text between ``<|start|>`` and ``<|message|>``), strictly.

``parse_header_strict`` is openai-harmony 0.0.8's algorithm, errors and quirks included; the
tolerant reading of the shapes gpt-oss really emits lives in ``ossa.harmony.tolerant``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import Role

CHANNEL_MARKER = "<|channel|>"
CONSTRAIN_MARKER = "<|constrain|>"
ROLE_WORDS = frozenset(r.value for r in Role)

# Unicode White_Space, as Rust's char::is_whitespace and str::trim use it.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_CHANNEL_END = re.compile("[" + re.escape(RUST_WHITESPACE) + "<]")
_ASCII_WHITESPACE = re.compile("[ \t\n\x0c\r]+")


@dataclass
class Header:
    """What a header says; ``rest`` holds the words the tolerant reading could not place."""

    role: Role
    name: str | None = None
    recipient: str | None = None
    channel: str | None = None
    content_type: str | None = None
    rest: str | None = None


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


def take_channel(text: str) -> tuple[str | None, str]:
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
    channel, text = take_channel(text)
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
    name = role_word if role is Role.TOOL else None
    return Header(role, name, recipient, channel, content_type), rest


def header_from_text_strict(text: str, role: Role | None) -> Header:
    header, rest = parse_header_strict(text, role)
    if rest is not None:
        raise HarmonyError(
            f"unexpected tokens remaining in message header: Some({rust_debug_str(rest)})"
        )
    return header

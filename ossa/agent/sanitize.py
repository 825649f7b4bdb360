"""Text from the model and from tools, made safe to show in a terminal.

A model (or a web page it read, or a program it ran) can emit escape sequences that recolour
the terminal, retitle its window, move the cursor over earlier output, or plant a hyperlink
whose text lies about its target. Everything the terminal view shows passes through here, so
none of it reaches the terminal raw: escape sequences are removed whole, other control
characters are dropped, and a carriage return becomes a line break (progress bars stay
readable instead of overwriting each other).
"""

from __future__ import annotations

import re

# ESC [ … final (CSI); ESC ] / P / X / ^ / _ … BEL or ESC \ (OSC, DCS, SOS, PM, APC);
# ESC with intermediates and a final byte (charset switches, resets, keypad modes).
_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]"
)
# What a sequence cut off by the end of a streamed piece can look like.
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b]*|[ -/]*)?$")
# C0 controls except tab and newline, DEL, and the C1 range (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: Longest unfinished sequence held back while streaming; longer ones were not sequences.
MAX_HELD = 256


def strip_controls(text: str) -> str:
    """``text`` without escape sequences or control characters (tab and newline stay)."""
    text = _SEQUENCE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


class ControlFilter:
    """:func:`strip_controls` for streamed text: a sequence split across pieces is held back
    until it is complete, so it is removed whole instead of leaving its tail as text."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        unfinished = _UNFINISHED.search(text)
        if unfinished and len(text) - unfinished.start() <= MAX_HELD:
            text, self._held = text[: unfinished.start()], text[unfinished.start() :]
        else:
            self._held = ""
        if text.endswith("\r"):  # "\r\n" may be split: decide when the next piece comes
            text, self._held = text[:-1], "\r" + self._held
        return strip_controls(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return strip_controls(text)

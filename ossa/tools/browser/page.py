"""The page model and the display the model was trained on.

A page is text with ``【id†text(†domain)】`` link markers plus the URL behind each id. The
model sees it as 80-column wrapped lines numbered ``L{n}:``, in views of about 1024 o200k
tokens, under a ``[{cursor}] {title} ({url})`` header; ``find`` answers with a page of
4-line windows whose link ids jump back to the hit.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import quote, unquote, urlsplit

#: Markers the converter writes; page text itself can never contain 【 or 】 (see sanitize),
#: nor start a line of its own that the display does not number.
LINK_MARKER = re.compile(r"【\d+†(?P<text>[^†】]+)(?:†[^†】]+)?】")
_PARTIAL_MARKER_START = re.compile(r"^[^【】]*】")
_PARTIAL_MARKER_END = re.compile(r"【\d*(?:†(?P<text>[^†】]*)(?:†[^†】]*)?)?$")
#: One pass over page text: the display's reserved characters replaced by lookalikes, what
#: str.splitlines (and a reader) takes for a line break made a ``\\n``, control characters
#: (terminal escapes start with one) and the non-characters XML refuses dropped, and lone
#: surrogates (which no encoder accepts) made U+FFFD.
_SANITIZE = str.maketrans(
    {"【": "〖", "】": "〗", "◼": "◾", "\u200b": None}
    | dict.fromkeys("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", "\n")
    | dict.fromkeys([*range(0x00, 0x09), *range(0x0E, 0x1C), 0x1F, 0xFFFE, 0xFFFF])
    | dict.fromkeys(range(0xD800, 0xE000), "\ufffd")
)

FIND_WINDOW_LINES = 4
FIND_MAX_RESULTS = 50
URL_DISPLAY_CHARS = 1024
TITLE_DISPLAY_CHARS = 1024


class ToolUsageError(Exception):
    """A mistake in the model's call; its text is shown to the model verbatim."""


def sanitize(text: str) -> str:
    """Page text, decoded, made safe to show: it cannot forge markers, every line it has is
    numbered, and it holds nothing a terminal or an encoder chokes on."""
    return text.replace("\r\n", "\n").translate(_SANITIZE)


def single_line(text: str) -> str:
    """Page text for a one-line place (a title, URL, link or error): sanitized, one line."""
    return sanitize(text).replace("\n", " ")


def domain_of(url: str) -> str:
    """The host shown in link markers and citations (``local`` for corpus files)."""
    parts = urlsplit(url)
    if parts.netloc:
        return parts.netloc
    return "local" if parts.scheme == "file" else ""


def truncate(text: str, limit: int = URL_DISPLAY_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class Page:
    """What one cursor shows: processed text, its links, and (find pages) the hit lines."""

    url: str
    title: str
    text: str
    #: link id (as a string, the way the model writes it) -> absolute URL
    links: dict[str, str] = field(default_factory=dict)
    #: find-results pages only: link id -> the line of the hit on the searched page
    hit_lines: dict[str, int] | None = None
    #: the URL a citation of this page points to (a find page cites the page searched)
    cite_url: str | None = None

    def __post_init__(self) -> None:
        # the header is one short line, whoever wrote the title: every view repeats it
        self.title = truncate(single_line(self.title), TITLE_DISPLAY_CHARS)

    @cached_property
    def lines(self) -> list[str]:
        return wrap_lines(self.text)

    @property
    def citation_url(self) -> str:
        return self.url if self.cite_url is None else self.cite_url


#: textwrap copies the rest of a word each time it breaks one, quadratic in the word's length;
#: longer lines are wrapped in pieces of this many rows (so a long word wraps the same).
WRAP_PIECE_ROWS = 200


def wrap_lines(text: str, width: int = 80) -> list[str]:
    """Split on newlines and wrap each line at 80 columns, keeping blank lines and spaces."""
    lines: list[str] = []
    piece = WRAP_PIECE_ROWS * width
    for line in text.split("\n"):
        if not line:
            lines.append("")
        for start in range(0, len(line), piece):
            lines.extend(
                textwrap.wrap(
                    line[start : start + piece],
                    width=width,
                    replace_whitespace=False,
                    drop_whitespace=False,
                )
            )
    return lines


def number_lines(lines: list[str], offset: int = 0) -> str:
    return "\n".join(f"L{i + offset}: {line}" for i, line in enumerate(lines))


def strip_link_markers(text: str) -> str:
    """Link markers reduced to their text, including markers cut at either end."""
    text = _PARTIAL_MARKER_START.sub("", text)
    text = _PARTIAL_MARKER_END.sub(lambda m: m.group("text") or "", text)
    return LINK_MARKER.sub(lambda m: m.group("text"), text)


class TokenCounter:
    """o200k_base token offsets, used to size a view to ``view_tokens`` tokens."""

    def __init__(self) -> None:
        from ossa.harmony.tokenizer import load_tokenizer

        self._tokenizer = load_tokenizer()

    def char_offset_of_token(self, text: str, n: int) -> int | None:
        """Where token ``n`` of ``text`` starts, or None when the text has ``n`` tokens or fewer."""
        tokens = self._tokenizer.encode_ordinary(text)  # page text is never special tokens
        if len(tokens) <= n:
            return None
        return len(self._tokenizer.decode_bytes(tokens[:n]).decode("utf-8", errors="replace"))


#: The longest o200k token is 128 characters; tokenizing this many per token is always enough.
_MAX_CHARS_PER_TOKEN = 128


def view_end(
    lines: list[str], loc: int, num_lines: int, view_tokens: int, counter: TokenCounter
) -> int:
    """One past the last line shown: ``num_lines`` lines, or as many as fit ``view_tokens``."""
    total = len(lines)
    if num_lines > 0:
        return min(loc + num_lines, total)
    text = number_lines(lines[loc:], offset=loc)
    if len(text) <= view_tokens:  # every token is at least one character
        return total
    cut = counter.char_offset_of_token(
        text[: (view_tokens + 1) * _MAX_CHARS_PER_TOKEN], view_tokens
    )
    if cut is None:
        return total
    return min(loc + text[:cut].count("\n") + 1, total)


def render_view(
    page: Page, cursor: int, loc: int, num_lines: int, view_tokens: int, counter: TokenCounter
) -> str:
    """The tool message text: header, scrollbar and numbered lines, as the model was trained."""
    lines = page.lines
    total = len(lines)
    if loc >= total:
        raise ToolUsageError(
            f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {total - 1}."
        )
    end = view_end(lines, loc, num_lines, view_tokens, counter)
    header = page.title
    if shown_url := truncate(single_line(unquote(page.url))):
        header += f" ({shown_url})"
    scrollbar = f"viewing lines [{loc} - {end - 1}] of {total - 1}"
    return f"[{cursor}] {header}\n**{scrollbar}**\n\n{number_lines(lines[loc:end], offset=loc)}"


def find_in_page(page: Page, pattern: str) -> Page:
    """Case-insensitive substring hits on the displayed lines, as a page of 4-line windows."""
    pattern = pattern.lower()  # the reference lowers it for the title too
    lines = strip_link_markers("\n".join(page.lines)).split("\n")
    chunks: list[str] = []
    hit_lines: dict[str, int] = {}
    i = 0
    while i < len(lines) and len(chunks) < FIND_MAX_RESULTS:
        if pattern not in lines[i].lower():
            i += 1
            continue
        window = "\n".join(lines[i : i + FIND_WINDOW_LINES])
        chunks.append(f"# 【{len(chunks)}†match at L{i}】\n{window}")
        hit_lines[str(len(hit_lines))] = i
        i += FIND_WINDOW_LINES
    text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{pattern}`"
    return Page(
        url=f"{page.url}/find?pattern={quote(pattern)}",
        title=f"Find results for text: `{pattern}` in `{page.title}`",
        text=text,
        links=dict.fromkeys(hit_lines, page.url),
        hit_lines=hit_lines,
        cite_url=page.citation_url,
    )

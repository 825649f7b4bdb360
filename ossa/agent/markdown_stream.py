"""Markdown rendered as it streams: each finished block is rendered once, only the open one again.

Re-rendering the whole answer at every delta costs time quadratic in its length (a 4k-token
answer took over half a minute to show). CommonMark decides block structure line by line, and a
block that another block has followed can no longer change: later lines may extend or
reinterpret only the last block. So once the complete lines hold two top-level blocks, all but
the last are final and are printed once; the last one (and the unfinished line) is the live
part, redrawn at a bounded rate by the terminal view. The printed result is the same as
rendering the whole text at the end (``tests/agent/test_render.py`` checks this for random
documents cut into random pieces).

Links a terminal cannot open (``file:`` paths of local-corpus citations, relative links, or
every link when the output is not a terminal) become numbered references listed after the
answer, so a citation reads ``(local, L2-L4 [1])`` with ``[1] corpus/tides.md`` below it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.console import RenderableType
from rich.markdown import Markdown, UnknownElement
from rich.text import Text

#: Link schemes shown as terminal hyperlinks (OSC 8) where the terminal has them.
WEB_SCHEMES = frozenset({"http", "https", "mailto"})


def _parser() -> MarkdownIt:
    """The parser rich's :class:`Markdown` uses, but one that keeps ``file:`` links as links
    (markdown-it drops them as unsafe for HTML; here they become references)."""
    parser = MarkdownIt().enable("strikethrough").enable("table")
    safe = parser.validateLink
    parser.validateLink = lambda url: url.strip().lower().startswith("file:") or safe(url)
    return parser


_PARSER = _parser()


class References:
    """Numbers for link targets shown as footnotes; one number per distinct target."""

    def __init__(self, *, hyperlinks: bool) -> None:
        self.hyperlinks = hyperlinks
        self.targets: dict[str, int] = {}

    def copy(self) -> References:
        other = References(hyperlinks=self.hyperlinks)
        other.targets = dict(self.targets)
        return other

    def linkable(self, href: str) -> bool:
        return self.hyperlinks and urlsplit(href).scheme.lower() in WEB_SCHEMES

    def number(self, href: str) -> int:
        return self.targets.setdefault(href, len(self.targets) + 1)

    def footnotes(self) -> Text | None:
        """The list printed after the answer, or None when nothing was referenced."""
        if not self.targets:
            return None
        lines = (f"[{n}] {readable_target(href)}" for href, n in self.targets.items())
        return Text("\n" + "\n".join(lines), style="dim")


def readable_target(href: str) -> str:
    """A ``file:`` URL as a path (relative to the working directory, or under ``~``)."""
    parts = urlsplit(href)
    if parts.scheme.lower() != "file":
        return href
    path = Path(url2pathname(parts.path))
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        if path.is_relative_to(base) and path != base:
            return prefix + str(path.relative_to(base))
    return str(path)


def _with_references(tokens: list[Token], refs: References) -> list[Token]:
    """Links the terminal cannot open: their text, then `` [n]`` pointing at a footnote."""
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        footnote: int | None = None
        for child in token.children:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if refs.linkable(href):
                    children.append(child)
                else:
                    footnote = refs.number(href)
            elif child.type == "link_close" and footnote is not None:
                children.append(Token("text", "", 0, content=f" [{footnote}]"))
                footnote = None
            else:
                children.append(child)
        token.children = children
    return tokens


class Blocks(Markdown):
    """Parsed top-level blocks, rendered the way rich renders them inside a whole document.

    Rich puts a blank line before a block unless the previous one was a rule; the only state
    it carries from one block to the next is that flag. ``blank_before`` restores it for a
    piece printed after earlier ones, with a token that renders nothing but sets the flag.
    """

    def __init__(self, tokens: list[Token], *, blank_before: bool) -> None:
        super().__init__("")
        self.parsed = [Token("ossa_blank_before", "", 0), *tokens] if blank_before else tokens

    @staticmethod
    def blank_after(tokens: list[Token], blank_before: bool) -> bool:
        """Whether rich would put a blank line before a block that follows ``tokens``."""
        if not tokens:
            return blank_before
        return Markdown.elements.get(tokens[-1].type, UnknownElement).new_line


def render_markdown(text: str, *, hyperlinks: bool = True) -> list[RenderableType]:
    """The whole text at once: what :class:`MarkdownStream` prints, piece by piece."""
    refs = References(hyperlinks=hyperlinks)
    tokens = _with_references(_PARSER.parse(text, {}), refs)
    footnotes = refs.footnotes()
    return [Blocks(tokens, blank_before=False), *([footnotes] if footnotes else [])]


class MarkdownStream:
    """One answer's Markdown, fed in pieces; hands out what to print once and what to redraw.

    The one thing a whole render sees that this cannot: a link reference definition
    (``[x]: https://…``) placed *after* a printed block that uses it; definitions before
    their use work as usual.
    """

    def __init__(self, *, hyperlinks: bool = True) -> None:
        self._open = ""  # text not printed yet: the last block and the unfinished line
        self._env: dict[str, Any] = {}  # link reference definitions seen so far
        self._refs = References(hyperlinks=hyperlinks)
        self._blank_before = False

    @property
    def pending(self) -> str:
        """The text not printed yet."""
        return self._open

    def feed(self, text: str) -> None:
        self._open += text

    def finished(self) -> Blocks | None:
        """The blocks that no later text can change, to print now; None when there are none."""
        complete = self._open[: self._open.rfind("\n") + 1]
        if not complete:
            return None
        starts = [
            token.map[0]
            for token in _PARSER.parse(complete, self._env_copy())
            if token.level == 0 and token.nesting >= 0 and token.map
        ]
        if len(starts) < 2:
            return None
        cut = 0
        for _ in range(starts[-1]):
            cut = complete.index("\n", cut) + 1
        return self._take(cut)

    def live(self) -> Blocks:
        """The open part as it would print now (it changes as text comes)."""
        tokens = _with_references(_PARSER.parse(self._open, self._env_copy()), self._refs.copy())
        return Blocks(tokens, blank_before=self._blank_before)

    def end(self) -> list[RenderableType]:
        """Everything left, then the footnotes: the answer is over."""
        rest = self._take(len(self._open))
        return [part for part in (rest, self._refs.footnotes()) if part is not None]

    def _take(self, cut: int) -> Blocks | None:
        text, self._open = self._open[:cut], self._open[cut:]
        tokens = _with_references(_PARSER.parse(text, self._env), self._refs)
        blank_before = self._blank_before
        self._blank_before = Blocks.blank_after(tokens, blank_before)
        return Blocks(tokens, blank_before=blank_before) if tokens else None

    def _env_copy(self) -> dict[str, Any]:
        return {key: dict(value) for key, value in self._env.items()}

"""Turning the model's ``【cursor†L9-L11】`` citations into Markdown links for people.

The cursor names a page on the browser's stack; the citation becomes a link to that page,
labelled with its domain and the cited lines. A citation of a cursor the browser never
showed (or of a search page, which has no address) is left as the model wrote it.
While streaming, a citation may arrive in pieces, so an unfinished ``【…`` is held back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote

from ossa.tools.browser.page import Page, domain_of

CITATION = re.compile(r"【(?P<cursor>\d+)†(?P<content>[^†】]+)(?:†[^†】]+)?】")
PARTIAL_CITATION = re.compile(r"【\d*(?:†[^†】]*(?:†[^†】]*)?)?$")
_LINES = re.compile(r"L\d+(?:-L\d+)?")


def normalize_citations(text: str, stack: Sequence[Page]) -> str:
    """Each citation of a known page replaced by ``([domain, L9-L11](url))``."""

    def replace(match: re.Match[str]) -> str:
        cursor = int(match.group("cursor"))
        url = stack[cursor].citation_url if cursor < len(stack) else ""
        if not url:
            return match.group(0)
        label = domain_of(url) or url
        if lines := _LINES.fullmatch(match.group("content").strip()):
            label += f", {lines.group(0)}"
        return f"([{label}]({quote(url, safe=':/?#[]@!$&*+,;=%~')}))"

    return CITATION.sub(replace, text)


class _Citer(Protocol):
    def normalize_citations(self, text: str) -> str: ...


class CitationStream:
    """Normalizes streamed text, holding back a citation until it is complete."""

    def __init__(self, browser: _Citer, *, max_held: int = 256) -> None:
        self._browser = browser
        self._held = ""
        self._max_held = max_held  # longer than any citation: it was just a bracket

    def feed(self, delta: str) -> str:
        """The text that is safe to show now."""
        text = self._held + delta
        partial = PARTIAL_CITATION.search(text)
        if partial and len(text) - partial.start() <= self._max_held:
            text, self._held = text[: partial.start()], text[partial.start() :]
        else:
            self._held = ""
        return self._browser.normalize_citations(text)

    def flush(self) -> str:
        """Whatever is still held, at the end of the message."""
        text, self._held = self._held, ""
        return self._browser.normalize_citations(text)

"""Turning fetched content (HTML, text, JSON, PDF) into pages in the trained format.

HTML follows the gpt-oss reference: links become ``【id†text(†domain)】`` markers with ids
per unique URL, images become ``[Image n: alt]``, and html2text renders the rest as plain
Markdown-ish text, prefixed ``\\nURL: {url}\\n`` so that ``L1`` shows the address.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote, urljoin, urlsplit

import html2text
import lxml.etree
import lxml.html

from ossa.tools.browser import pdftext
from ossa.tools.browser.limits import Deadline
from ossa.tools.browser.page import Page, domain_of, sanitize, single_line

#: Seconds a page's conversion may take; past them the rest is cut, with a notice.
PROCESSING_SECONDS = 10.0
_FEED_CHARS = 64 * 1024
#: links and images (read here), list numbering and abbreviations (read by html2text)
_KEPT_ATTRIBUTES = {"href", "alt", "title", "start"}
#: Pretty-printed JSON longer than this many times its source is shown as sent (nesting
#: indents each level: 1000 levels of ``[`` would become a million spaces per 2 KB).
_JSON_GROWTH = 4

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")
_SMP = re.compile(r"[\U00010000-\U0001FFFF]")  # emoji and friends; lxml mishandles them
_SUP = re.compile(r"<sup( [^>]*)?>([\w\-]+)</sup>")
_SUB = re.compile(r"<sub( [^>]*)?>([\w\-]+)</sub>")
_TAGS_INSIDE_WORD = re.compile(r"(?<=\w)((<[^>]*>)+)(?=\w)")
_BLANK_LINE = re.compile(r"^\s+$", flags=re.MULTILINE)
_BLANK_RUN = re.compile(r"\n(\s*\n)+")


class _PlainText(html2text.HTML2Text):
    """html2text without Markdown escaping: the model reads the text, nobody renders it."""

    def __init__(self) -> None:
        super().__init__(bodywidth=0)
        self.ignore_links = True
        self.ignore_images = True
        self.ignore_tables = True
        self.ignore_emphasis = True
        self.unicode_snob = True

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        super().handle_data(data, entity_char=True)  # entity_char=True skips escaping


def _with_url_line(url: str, text: str) -> str:
    return f"\nURL: {single_line(url)}\n{text}"


def _sanitize_tree(root: lxml.html.HtmlElement) -> None:
    """Every text in the tree made safe, after the parser decoded its entities.

    Escaping must follow decoding: ``&#x3010;`` is not a marker until it is parsed. Only
    the attributes the conversion reads are kept (sanitized too), so nothing
    page-controlled is left unsanitized, and the HTML handed to html2text stays small.
    """
    for node in root.iter():
        if node.text:
            node.text = sanitize(node.text)
        if node.tail:
            node.tail = sanitize(node.tail)
        if node.attrib:
            kept = {k: sanitize(v) for k, v in node.attrib.items() if k in _KEPT_ATTRIBUTES}
            node.attrib.clear()
            node.attrib.update(kept)


def _link_text(node: lxml.html.HtmlElement) -> str:
    return single_line(" ".join(" ".join(node.itertext()).split())).replace("†", "‡")


def _replace_with_text(node: lxml.html.HtmlElement, text: str) -> None:
    """The element becomes a span holding only ``text``: O(1), unlike moving text into a
    neighbour's, which copies that neighbour's text each time (quadratic over siblings)."""
    tail = node.tail
    node.clear()
    node.tag = "span"
    node.text = text
    node.tail = tail


def _mark_links(
    root: lxml.html.HtmlElement, page_url: str, links: list[lxml.html.HtmlElement]
) -> dict[str, str]:
    """Replace each ``<a href>`` with a link marker; one id per unique absolute URL.

    ``links`` are in document order, so a link's nested links follow it: when a link is
    replaced they are skipped, and each text is read once.
    """
    page_domain = domain_of(page_url)
    ids: dict[str, str] = {}
    skip = 0
    for a in links:
        if skip:
            skip -= 1
            continue
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("mailto:", "javascript:")):
            continue
        text = _link_text(a)
        if not text:  # an image-only link: nothing to show
            continue
        skip = sum(1 for inner in a.iter("a") if inner.get("href") is not None) - 1
        if href.startswith("#"):
            _replace_with_text(a, text)
            continue
        try:
            url = urljoin(page_url, href)
        except ValueError:
            skip = 0
            continue
        domain = single_line(domain_of(url)).replace("†", "‡")
        if not domain or urlsplit(url).scheme not in ("http", "https", "file"):
            skip = 0
            continue
        url = url.replace("arxiv.org", "ar5iv.org")  # the reference reads papers as HTML
        link_id = ids.setdefault(url, str(len(ids)))
        marker = (
            f"【{link_id}†{text}】" if domain == page_domain else f"【{link_id}†{text}†{domain}】"
        )
        _replace_with_text(a, marker)
    return {link_id: url for url, link_id in ids.items()}


def _mark_images(images: list[lxml.html.HtmlElement]) -> None:
    for n, img in enumerate(images):
        name = single_line(img.get("alt") or img.get("title") or "")
        _replace_with_text(img, f"[Image {n}: {name}]" if name else f"[Image {n}]")


def _html_to_text(html: str, budget: Deadline) -> str:
    html = _SUP.sub(r"^{\2}", html)
    html = _SUB.sub(r"_{\2}", html)
    html = _TAGS_INSIDE_WORD.sub(r" \1", html)  # table cells and the like stay apart
    converter = _PlainText()
    start = 0
    cut = False
    while start < len(html) and not cut:  # html2text is the slow part: fed in pieces, to
        end = html.find("<", start + _FEED_CHARS)  # stop at the budget; a piece ends before
        end = len(html) if end == -1 else end  # a tag, so no text is cut (a marker in two)
        converter.feed(html[start:end])
        start = end
        cut = start < len(html) and budget.expired
    text = _BLANK_LINE.sub("", converter.finish().strip())
    text = _BLANK_RUN.sub("\n\n", text)
    return f"{text}\n\n{_cut_notice(budget)}" if cut else text


def _budget() -> Deadline:
    return Deadline(PROCESSING_SECONDS, "converting the page")


def _cut_notice(budget: Deadline) -> str:
    return f"[Truncated: {budget.what} took longer than {budget.seconds:g} s]"


def html_to_page(
    html: str, url: str, title: str | None = None, *, budget: Deadline | None = None
) -> Page:
    """A page from HTML, as the gpt-oss reference browser shows it, in linear time and
    within ``budget`` (by default ``PROCESSING_SECONDS``): past it, the rest is cut with
    a notice."""
    budget = budget or _budget()
    html = _XML_DECLARATION.sub("", _SMP.sub("", html), count=1)  # lxml refuses it in a str
    try:
        root = lxml.html.fromstring(html)
    except lxml.etree.ParserError:  # nothing but whitespace, comments and the like
        return Page(url=url, title=title or domain_of(url), text=_with_url_line(url, ""))
    _sanitize_tree(root)
    if not title:
        found = root.find(".//title")
        title = (found.text or "").strip() if found is not None else domain_of(url)
    # the math first: its links and images are not shown
    for node in list(root.iter("math")):
        _replace_with_text(node, "")
    links = _mark_links(root, url, [a for a in root.iter("a") if a.get("href") is not None])
    _mark_images(list(root.iter("img")))
    text = _html_to_text(lxml.etree.tostring(root, encoding="unicode"), budget)
    return Page(url=url, title=title, text=_with_url_line(url, text), links=links)


def _name_from_url(url: str) -> str:
    path = unquote(urlsplit(url).path).rstrip("/")
    return path.rsplit("/", 1)[-1] or domain_of(url)


def text_to_page(text: str, url: str, title: str | None = None) -> Page:
    """Plain text or Markdown, shown as is (minus the reserved characters)."""
    return Page(
        url=url, title=title or _name_from_url(url), text=_with_url_line(url, sanitize(text))
    )


def json_to_page(raw: bytes, url: str) -> Page:
    """JSON, pretty-printed so that lines are short and meaningful, unless that would
    multiply its size (deep nesting): then as sent."""
    return text_to_page(_pretty_json(raw) or raw.decode("utf-8", errors="replace"), url)


def _pretty_json(raw: bytes) -> str | None:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    limit = _JSON_GROWTH * len(raw) + 4096
    pieces: list[str] = []
    size = 0
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    for piece in encoder.iterencode(data):
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            return None
    return "".join(pieces)


def pdf_to_page(raw: bytes, url: str, *, budget: Deadline | None = None) -> Page:
    """The text layer of a PDF, one block per page, read in a child process the ``budget``
    stops (pages past it are cut with a notice); scanned PDFs come out empty. Raises
    ValueError for a PDF that cannot be read."""
    budget = budget or _budget()
    result = pdftext.extract(raw, budget)
    if result.error is not None and not result.pages:
        raise ValueError(f"cannot read the PDF: {result.error}")
    blocks = result.pages + ([_cut_notice(budget)] if result.cut else [])
    return text_to_page("\n\n".join(blocks), url, title=result.title)

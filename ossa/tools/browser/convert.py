"""Turning fetched content (HTML, text, JSON, PDF) into pages in the trained format.

HTML follows the gpt-oss reference: links become ``【id†text(†domain)】`` markers with ids
per unique URL, images become ``[Image n: alt]``, and html2text renders the rest as plain
Markdown-ish text, prefixed ``\\nURL: {url}\\n`` so that ``L1`` shows the address.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import unquote, urljoin, urlsplit

import html2text
import lxml.etree
import lxml.html

from ossa.tools.browser.page import Page, domain_of, sanitize

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
    return f"\nURL: {url}\n{text}"


def _replace_with_text(node: lxml.html.HtmlElement, text: str) -> None:
    """Swap an element for a string, keeping the text around it."""
    parent = node.getparent()
    previous = node.getprevious()
    tail = node.tail or ""
    if previous is None:
        parent.text = (parent.text or "") + text + tail
    else:
        previous.tail = (previous.tail or "") + text + tail
    parent.remove(node)


def _element_text(node: lxml.html.HtmlElement) -> str:
    return " ".join(" ".join(node.itertext()).split())


def _mark_links(root: lxml.html.HtmlElement, page_url: str) -> dict[str, str]:
    """Replace each ``<a href>`` with a link marker; one id per unique absolute URL."""
    page_domain = domain_of(page_url)
    ids: dict[str, str] = {}
    for a in root.findall(".//a[@href]"):
        if a.getparent() is None:
            continue
        href = a.attrib["href"].strip()
        if href.startswith(("mailto:", "javascript:")):
            continue
        text = _element_text(a).replace("†", "‡")
        if not text:  # an image-only link: nothing to show
            continue
        if href.startswith("#"):
            _replace_with_text(a, text)
            continue
        try:
            url = urljoin(page_url, href)
        except ValueError:
            continue
        domain = domain_of(url)
        if not domain or urlsplit(url).scheme not in ("http", "https", "file"):
            continue
        url = url.replace("arxiv.org", "ar5iv.org")  # the reference reads papers as HTML
        link_id = ids.setdefault(url, str(len(ids)))
        marker = (
            f"【{link_id}†{text}】" if domain == page_domain else f"【{link_id}†{text}†{domain}】"
        )
        _replace_with_text(a, marker)
    return {link_id: url for url, link_id in ids.items()}


def _mark_images(root: lxml.html.HtmlElement) -> None:
    for n, img in enumerate(root.findall(".//img")):
        name = img.get("alt") or img.get("title")
        _replace_with_text(img, f"[Image {n}: {name}]" if name else f"[Image {n}]")


def _html_to_text(html: str) -> str:
    html = _SUP.sub(r"^{\2}", html)
    html = _SUB.sub(r"_{\2}", html)
    html = _TAGS_INSIDE_WORD.sub(r" \1", html)  # table cells and the like stay apart
    text = _PlainText().handle(html).strip()
    text = _BLANK_LINE.sub("", text)
    return _BLANK_RUN.sub("\n\n", text)


def html_to_page(html: str, url: str, title: str | None = None) -> Page:
    """A page from HTML, as the gpt-oss reference browser shows it."""
    html = sanitize(_SMP.sub("", html))
    if not html.strip():
        return Page(url=url, title=title or domain_of(url), text=_with_url_line(url, ""))
    root = lxml.html.fromstring(html)
    if not title:
        found = root.find(".//title")
        title = (found.text or "").strip() if found is not None else domain_of(url)
    links = _mark_links(root, url)
    _mark_images(root)
    for node in root.findall(".//math"):
        node.getparent().remove(node)
    text = _html_to_text(lxml.etree.tostring(root, encoding="unicode"))
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
    """JSON, pretty-printed so that lines are short and meaningful."""
    try:
        text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        text = raw.decode("utf-8", errors="replace")
    return text_to_page(text, url)


def pdf_to_page(raw: bytes, url: str) -> Page:
    """The text layer of a PDF, one block per page; scanned PDFs come out empty."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    text = "\n\n".join((p.extract_text() or "").strip() for p in reader.pages)
    info_title = reader.metadata.title if reader.metadata else None
    return text_to_page(text, url, title=info_title or None)

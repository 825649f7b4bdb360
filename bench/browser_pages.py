"""How fast a fetched page becomes what the model reads: ossa's browser vs the usual converters.

ossa turns HTML into the gpt-oss page format (link markers, 80-column numbered lines, a
~1024-token first view). The peers are what keyless-search tools commonly use instead:
trafilatura's Markdown extraction (with links) and plain html2text (the converter the
gpt-oss reference builds on, without link markers or views). Same synthetic pages, one run.

    python3 bench/browser_pages.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import html2text
import trafilatura

from ossa.harmony.tokenizer import load_tokenizer
from ossa.tools.browser.convert import html_to_page
from ossa.tools.browser.page import TokenCounter, render_view

LINKS = (Path(__file__).parent.parent / "tests/tools/browser_fixtures/links.html").read_text()
BODY = LINKS.split("<body>")[1].split("</body>")[0]


def synthetic_page(repeats: int) -> str:
    """A link-heavy article: the fixture's body plus prose, repeated."""
    prose = "".join(
        f"<p>Section {i}: tidal forces, <a href='/s/{i}'>section link</a> and "
        f"<a href='https://ref{i % 7}.example/x'>a reference</a> with more words here.</p>"
        for i in range(20)
    )
    return f"<html><head><title>Bench</title></head><body>{(BODY + prose) * repeats}</body></html>"


def sibling_links(count: int) -> str:
    """One paragraph of ``count`` links side by side: conversion was quadratic in these
    (24,000 of them, about 800 KB, took 23 s of CPU before it was made linear)."""
    links = "".join(f"<a href='/p/{i}'>link {i}</a> " for i in range(count))
    return f"<html><body><p>{links}</p></body></html>"


def ossa_view(html: str) -> str:
    page = html_to_page(html, "https://bench.example/article")
    return render_view(page, 0, 0, -1, 1024, COUNTER)


def trafilatura_markdown(html: str) -> str:
    return trafilatura.extract(html, output_format="markdown", include_links=True) or ""


def plain_html2text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    return converter.handle(html)


def median_ms(fn: Callable[[str], str], html: str, runs: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        out = fn(html)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), out


COUNTER = TokenCounter()


def main() -> None:
    tokenizer = load_tokenizer()
    rows = []
    pages = [
        ("small (~10 KB)", synthetic_page(2), 7),
        ("large (~1 MB)", synthetic_page(200), 3),
        ("sibling links (~800 KB)", sibling_links(24_000), 3),
    ]
    for label, html, runs in pages:
        for name, fn in [
            ("ossa browser (page + first view)", ossa_view),
            ("trafilatura markdown", trafilatura_markdown),
            ("html2text plain", plain_html2text),
        ]:
            ms, out = median_ms(fn, html, runs)
            tokens = len(tokenizer.encode_ordinary(out))
            rows.append((label, f"{len(html) / 1000:.0f} KB", name, f"{ms:.1f}", str(tokens)))
    header = ("page", "html", "converter", "median ms", "o200k tokens to the model")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()

"""Page formatting, HTML conversion and citations, without a network."""

from __future__ import annotations

import json
from pathlib import Path

import openai_harmony as oracle
import pytest

from ossa.harmony import Message, Role, SystemContent, load_harmony_encoding
from ossa.tools.browser import BrowserTool, CitationStream, LocalBackend
from ossa.tools.browser.convert import html_to_page, json_to_page, text_to_page
from ossa.tools.browser.page import Page, number_lines, strip_link_markers, wrap_lines

FIXTURES = Path(__file__).parent / "browser_fixtures"


def test_wrapping_keeps_blank_lines_and_spaces() -> None:
    text = "short\n\n" + "word " * 30 + "\n   indented"
    lines = wrap_lines(text)
    assert lines[:2] == ["short", ""]
    assert all(len(line) <= 80 for line in lines)
    assert "".join(lines[2:-1]) == "word " * 30  # drop_whitespace=False keeps every space
    assert lines[-1] == "   indented"
    assert number_lines(["a", "b"], offset=7) == "L7: a\nL8: b"


def test_markers_are_stripped_even_when_cut_at_either_end() -> None:
    assert strip_link_markers("see 【3†the docs†python.org】 now") == "see the docs now"
    assert strip_link_markers("cs†python.org】 tail and head 【12†par") == " tail and head par"


def test_html_conversion_details() -> None:
    page = html_to_page(
        "<html><body><p>x<sup>2</sup> and CO<sub>2</sub>🌍</p><math><mi>z</mi></math>"
        "<table><tr><td>left</td><td>right</td></tr></table></body></html>",
        "https://docs.example.org/a/b",
    )
    assert page.title == "docs.example.org"  # no <title>: the domain
    assert page.text == "\nURL: https://docs.example.org/a/b\nx^{2} and CO_{2}\n\nleft right"
    empty = html_to_page("", "https://e.example/")
    assert (empty.title, empty.text) == ("e.example", "\nURL: https://e.example/\n")


def test_text_and_json_pages() -> None:
    page = text_to_page("a 【1†b】 c", "https://h.example/dir/notes.md")
    assert (page.title, page.text) == (
        "notes.md",
        "\nURL: https://h.example/dir/notes.md\na 〖1†b〗 c",
    )
    data = json_to_page(json.dumps({"k": [1, "【"]}).encode(), "https://h.example/d.json")
    assert data.text.endswith('{\n  "k": [\n    1,\n    "〖"\n  ]\n}')
    broken = json_to_page(b'{"k": ', "https://h.example/d.json")
    assert broken.text.endswith('{"k": ')


def test_namespace_is_harmonys_builtin_browser() -> None:
    tool = BrowserTool(LocalBackend(FIXTURES / "corpus"))
    assert (tool.name, tool.builtin) == ("browser", True)
    ours = load_harmony_encoding().render(
        Message.from_role_and_content(Role.SYSTEM, SystemContent.new().with_tools(tool.namespace()))
    )
    expected = oracle.load_harmony_encoding(oracle.HarmonyEncodingName.HARMONY_GPT_OSS).render(
        oracle.Message.from_role_and_content(
            oracle.Role.SYSTEM, oracle.SystemContent.new().with_browser_tool()
        )
    )
    assert ours == expected


@pytest.fixture
def browsed() -> BrowserTool:
    """A browser that searched the corpus (cursor 0), opened a page (1) and searched it (2)."""
    tool = BrowserTool(LocalBackend(FIXTURES / "corpus"))
    for function, args in [
        ("search", {"query": "spring tides"}),
        ("open", {"id": 0}),
        ("find", {"pattern": "moon"}),
    ]:
        message = Message.from_role_and_content(Role.ASSISTANT, json.dumps(args))
        tool.call(message.with_recipient(f"browser.{function}"))
    assert len(tool.stack) == 3
    return tool


def test_citations_become_links(browsed: BrowserTool) -> None:
    url = (FIXTURES / "corpus" / "tides.html").resolve().as_uri()
    assert browsed.normalize_citations("Spring tides 【1†L2-L4】.") == (
        f"Spring tides ([local, L2-L4]({url}))."
    )
    assert browsed.normalize_citations("【1†L3】") == f"([local, L3]({url}))"
    assert browsed.normalize_citations("【1†the moon†x】") == f"([local]({url}))"
    assert browsed.normalize_citations("a find page cites its page: 【2†L0】") == (
        f"a find page cites its page: ([local, L0]({url}))"
    )
    # a search page has no address and cursor 7 was never shown: left as written
    assert browsed.normalize_citations("【0†L2】 and 【7†L1-L2】") == "【0†L2】 and 【7†L1-L2】"


def test_links_escape_parentheses() -> None:
    tool = BrowserTool(LocalBackend(FIXTURES / "corpus"))
    tool.stack.append(
        Page(url="https://en.wikipedia.org/wiki/Python_(language)", title="P", text="")
    )
    assert tool.normalize_citations("【0†L1】") == (
        "([en.wikipedia.org, L1](https://en.wikipedia.org/wiki/Python_%28language%29))"
    )


def test_streaming_holds_back_partial_citations(browsed: BrowserTool) -> None:
    text = "Tides 【1†L2-L4】 rise; moon 【9†L1】 too 【1†L"
    stream = CitationStream(browsed)
    shown = []
    for char in text:
        shown.append(stream.feed(char))
    end = stream.flush()
    assert "".join(shown) + end == browsed.normalize_citations(text)
    assert "【1" not in "".join(shown)  # never half a citation on screen
    assert end == "【1†L"  # unfinished at the end: shown as written
    assert "".join(shown).startswith("Tides ([local, L2-L4](file://")


def test_streaming_releases_a_lone_bracket() -> None:
    stream = CitationStream(BrowserTool(LocalBackend(FIXTURES / "corpus")), max_held=10)
    assert stream.feed("a 【") == "a "
    assert stream.feed("no citation") == "【no citation"
    assert stream.feed(" 【12†") == " "
    assert stream.feed("a long time") == "【12†a long time"  # past max_held: let it go
    assert stream.flush() == ""

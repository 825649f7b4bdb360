"""Search backends: ddgs with its HTTP layer (primp) mocked, and the local BM25 corpus."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ddgs.http_client
import pytest

from ossa.harmony import Message, Role
from ossa.tools.browser import BrowserTool, DdgsBackend, LocalBackend
from ossa.tools.browser.backends import BackendError

FIXTURES = Path(__file__).parent / "browser_fixtures"
DDG_PAGE = (FIXTURES / "ddg_response.html").read_text()


class FakePrimp:
    """Stands in for the primp HTTP client ddgs uses: records requests, replays answers."""

    TimeoutError = TimeoutError

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def Client(self, **kwargs: Any) -> Any:  # noqa: N802 (primp's class name)
        fake = self

        class _Client:
            def headers_update(self, headers: dict[str, str]) -> None:
                pass

            def request(self, method: str, url: str, **kw: Any) -> Any:
                fake.requests.append((method, url, kw))
                status, text = fake.answers.pop(0)
                return SimpleNamespace(status_code=status, text=text, content=text.encode())

        return _Client()


@pytest.fixture
def primp(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> FakePrimp:
    fake = FakePrimp(list(request.param))
    monkeypatch.setattr(ddgs.http_client, "primp", fake)
    return fake


def search(tool: BrowserTool, query: str) -> str:
    message = Message.from_role_and_content(Role.ASSISTANT, json.dumps({"query": query}))
    message = message.with_recipient("browser.search").with_channel("analysis")
    return tool.call(message)[0].content[0].text


@pytest.mark.parametrize("primp", [[(200, DDG_PAGE)]], indirect=True)
def test_ddgs_results_become_the_trained_search_page(primp: FakePrimp) -> None:
    tool = BrowserTool(DdgsBackend(min_interval_s=0))
    page = search(tool, "python asyncio")
    assert primp.requests == [
        (
            "POST",
            "https://html.duckduckgo.com/html/",
            {"data": {"q": "python asyncio", "b": "", "l": "us-en"}},
        )
    ]
    assert page.split("\n")[:5] == [
        "[0] python asyncio",
        "**viewing lines [0 - 7] of 7**",
        "",
        "L0: ",
        "L1: URL: ",
    ]
    assert "L2: # Search Results" in page
    assert "Sponsored" not in page  # ads dropped
    assert tool.stack[0].links == {
        "0": "https://docs.python.org/3/library/asyncio.html",
        "1": "https://realpython.com/async-io-python/",  # DuckDuckGo's redirect unwrapped
    }
    assert "【0†asyncio — Asynchronous I/O — Python 3 documentation†docs.python.org】" in (
        tool.stack[0].text
    )
    assert "【1†Async IO in Python: A Complete Walkthrough†realpython.com】 A hands-on tour" in (
        tool.stack[0].text
    )


@pytest.mark.parametrize("primp", [[(202, ""), (202, ""), (200, DDG_PAGE)]], indirect=True)
def test_ddgs_backs_off_when_rate_limited(primp: FakePrimp) -> None:
    backend = DdgsBackend(min_interval_s=0, backoff_s=0)
    results = backend.search("python asyncio", 10)
    assert len(primp.requests) == 3
    assert [r.url for r in results][0] == "https://docs.python.org/3/library/asyncio.html"


@pytest.mark.parametrize("primp", [[(202, "")] * 3], indirect=True)
def test_ddgs_rate_limit_gives_a_clear_message(primp: FakePrimp) -> None:
    tool = BrowserTool(DdgsBackend(min_interval_s=0, backoff_s=0))
    assert search(tool, "python") == (
        "Error during search for `python`: duckduckgo is rate-limiting this machine "
        "(HTTP 202, 3 tries): wait a minute, or use the searxng or local backend"
    )
    assert tool.stack == []


@pytest.mark.parametrize("primp", [[(500, "oops")]], indirect=True)
def test_ddgs_server_errors_are_reported(primp: FakePrimp) -> None:
    with pytest.raises(BackendError, match="duckduckgo answered HTTP 500"):
        DdgsBackend(min_interval_s=0).search("python", 10)


def test_unknown_ddgs_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ddgs engine `altavista`"):
        DdgsBackend("altavista")


@pytest.fixture(scope="module")
def corpus() -> LocalBackend:
    return LocalBackend(FIXTURES / "corpus")


def test_local_corpus_indexes_every_readable_file(corpus: LocalBackend) -> None:
    names = sorted(url.rsplit("/", 1)[-1] for url in corpus.pages)
    assert names == ["bread.txt", "heliotrope.pdf", "moon.md", "tides.html"]
    assert list(corpus.skipped) == [str(FIXTURES / "corpus" / "broken.pdf")]


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("sourdough starter", "bread.txt"),
        ("heliotrope sun", "heliotrope.pdf"),
        ("spring tides full moon", "tides.html"),
        ("orbit days", "moon.md"),
    ],
)
def test_local_search_ranks_the_matching_document_first(
    corpus: LocalBackend, query: str, best: str
) -> None:
    results = corpus.search(query, 10)
    assert results[0].url.endswith("/" + best)
    assert corpus.search("xylophone", 10) == []


def test_local_corpus_browsing_offline(corpus: LocalBackend) -> None:
    tool = BrowserTool(corpus)
    page = search(tool, "spring tides")
    assert (
        "【0†Tide Tables†local】 Spring tides happen near the full and new moon"
        in tool.stack[0].text
    )
    assert "[0] spring tides" in page

    def call(function: str, args: dict[str, Any]) -> str:
        message = Message.from_role_and_content(Role.ASSISTANT, json.dumps(args))
        return tool.call(message.with_recipient(f"browser.{function}"))[0].content[0].text

    tides = call("open", {"id": 0})
    assert tides.startswith("[1] Tide Tables (file://")
    assert "See also 【0†moon notes】 and 【1†NOAA†noaa.gov】." in tides
    moon = call("open", {"id": 0})  # a relative link between corpus files
    assert moon.startswith("[2] Moon notes (file://")
    assert "Its gravity raises the tides." in moon
    refused = call("open", {"id": "file:///etc/passwd"})
    assert refused == (
        "Error fetching URL `file:///etc/passwd`: only http and https URLs can be opened, not `file:`"
    )

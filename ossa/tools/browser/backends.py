"""Search backends: keyless DuckDuckGo (ddgs), self-hosted SearXNG, a local BM25 corpus,
and a small base for keyed web APIs.

A backend turns a query into results; the browser renders them as the search page the
model was trained on. A backend that owns documents (the local corpus) also opens them.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from ossa.tools.browser.convert import html_to_page, pdf_to_page, text_to_page
from ossa.tools.browser.fetch import USER_AGENT
from ossa.tools.browser.page import Page, single_line, strip_link_markers

#: HTTP statuses DuckDuckGo answers with when it throttles a client.
_RATE_LIMITED = {202, 403, 429}


class BackendError(Exception):
    """A search that failed; shown to the model after ``Error during search for``."""


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


def results_page(query: str, results: list[SearchResult]) -> Page:
    """The search page exactly as the reference builds it: an HTML list, processed like any page."""
    items = "".join(
        f"<li><a href='{html.escape(r.url, quote=True)}'>{html.escape(r.title or r.url)}</a> "
        f"{html.escape(r.snippet)}</li>"
        for r in results
    )
    return html_to_page(
        f"<html><body><h1>Search Results</h1><ul>{items}</ul></body></html>", "", query
    )


class SearchBackend(ABC):
    """Where ``browser.search`` looks things up."""

    #: shown in error messages
    name: ClassVar[str]

    @abstractmethod
    def search(self, query: str, topn: int) -> list[SearchResult]:
        """Up to ``topn`` results, best first; raises BackendError with a readable reason."""

    def fetch(self, url: str) -> Page | None:
        """The page for ``url`` if this backend owns it; None sends it to the web fetcher."""
        return None

    def close(self) -> None:  # noqa: B027 (most backends hold nothing)
        """Release connections."""


class DdgsBackend(SearchBackend):
    """Keyless search through ddgs, pinned to one engine so results are reproducible.

    ddgs' ``auto`` mode mixes random engines; here one engine is asked directly, so a
    throttling answer (HTTP 202/403/429) is seen, backed off from, and reported clearly.
    """

    name = "ddgs"

    def __init__(
        self,
        engine: str = "duckduckgo",
        *,
        region: str = "us-en",
        timeout: int = 10,
        retries: int = 2,
        backoff_s: float = 2.0,
        min_interval_s: float = 1.0,
    ) -> None:
        from ddgs.engines import ENGINES

        if engine not in ENGINES["text"]:
            raise ValueError(f"unknown ddgs engine `{engine}`; one of {sorted(ENGINES['text'])}")
        self._engine = ENGINES["text"][engine](timeout=timeout)
        self.region = region
        self.retries = retries
        self.backoff_s = backoff_s
        self.min_interval_s = min_interval_s
        self._last_request = 0.0
        self._lock = threading.Lock()

    def search(self, query: str, topn: int) -> list[SearchResult]:
        from ddgs.exceptions import DDGSException

        engine = self._engine
        payload = engine.build_payload(
            query=query, region=self.region, safesearch="moderate", timelimit=None, page=1
        )
        body_key = "params" if engine.search_method == "GET" else "data"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self._throttle()
            try:
                response = engine.http_client.request(
                    engine.search_method, engine.search_url, **{body_key: payload}
                )
            except DDGSException as e:
                raise BackendError(f"{engine.name}: {e}") from e
            if response.status_code == 200:
                found = engine.post_extract_results(engine.extract_results(response.text))
                return [
                    SearchResult(r.title, _unwrap_redirect(r.href), r.body) for r in found[:topn]
                ]
            if response.status_code not in _RATE_LIMITED:
                raise BackendError(f"{engine.name} answered HTTP {response.status_code}")
        raise BackendError(
            f"{engine.name} is rate-limiting this machine (HTTP {response.status_code}, "
            f"{self.retries + 1} tries): wait a minute, or use the searxng or local backend"
        )

    def _throttle(self) -> None:
        """At most one request per ``min_interval_s``, the pace DuckDuckGo tolerates."""
        with self._lock:
            wait = self._last_request + self.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_request = time.monotonic()


def _unwrap_redirect(href: str) -> str:
    """DuckDuckGo's ``/l/?uddg=<url>`` click-tracking links, reduced to the target."""
    parts = urlsplit(href)
    if parts.netloc.endswith("duckduckgo.com") and parts.path.startswith("/l/"):
        target = parse_qs(parts.query).get("uddg")
        if target:
            return target[0]
    return href


class SearxngBackend(SearchBackend):
    """A SearXNG instance's JSON API (``json`` must be in its ``search.formats``)."""

    name = "searxng"

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT})

    def search(self, query: str, topn: int) -> list[SearchResult]:
        try:
            response = self._client.get(
                f"{self.base_url}/search", params={"q": query, "format": "json"}
            )
        except httpx.HTTPError as e:
            raise BackendError(f"SearXNG at {self.base_url} is unreachable: {e}") from e
        if response.status_code == 403:
            raise BackendError(
                "SearXNG refused the JSON API (HTTP 403): add `json` to search.formats "
                "in its settings.yml"
            )
        if response.status_code != 200:
            raise BackendError(
                f"SearXNG error {response.status_code}: {single_line(response.text[:200])}"
            )
        try:
            results = response.json()["results"]
        except (ValueError, KeyError) as e:
            raise BackendError("SearXNG answered something other than its JSON results") from e
        return [
            SearchResult(r.get("title", ""), r["url"], r.get("content") or "")
            for r in results[:topn]
            if r.get("url")
        ]

    def close(self) -> None:
        self._client.close()


class KeyedBackend(SearchBackend):
    """Base for web APIs that need a key: finds the key, sends it, turns failures into errors.

    A subclass sets ``name``, ``env_var`` and ``key_header`` and implements ``search`` with
    :meth:`request_json`.
    """

    env_var: ClassVar[str]
    key_header: ClassVar[str] = "x-api-key"

    def __init__(self, api_key: str | None = None, *, timeout: float = 15.0) -> None:
        key = api_key or os.environ.get(self.env_var)
        if not key:
            raise ValueError(
                f"{self.name} API key not provided: pass api_key or set {self.env_var}"
            )
        self._client = httpx.Client(
            timeout=timeout, headers={self.key_header: key, "user-agent": USER_AGENT}
        )

    def request_json(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            raise BackendError(f"{self.name} is unreachable: {e}") from e
        if response.status_code != 200:
            raise BackendError(
                f"{self.name} error {response.status_code}: {single_line(response.text[:200])}"
            )
        return response.json()

    def close(self) -> None:
        self._client.close()


_WORD = re.compile(r"\w+")
_SUFFIXES = {".html", ".htm", ".md", ".markdown", ".txt", ".pdf"}


def _load(path: Path, url: str) -> Page:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return pdf_to_page(path.read_bytes(), url)
    text = path.read_text(errors="replace")
    if suffix in (".html", ".htm"):
        return html_to_page(text, url)
    heading = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), None)
    return text_to_page(text, url, title=heading)


def _terms(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class LocalBackend(SearchBackend):
    """Offline search over a directory of HTML, Markdown, text and PDF files (BM25).

    Documents get ``file://`` URLs; opening one is served from the index, never from disk
    paths the model makes up. Files that cannot be read are listed in ``skipped``.
    """

    name = "local"

    def __init__(self, corpus_dir: str | os.PathLike[str]) -> None:
        from rank_bm25 import BM25Okapi

        root = Path(corpus_dir)
        if not root.is_dir():
            raise ValueError(f"local corpus `{root}` is not a directory")
        self.pages: dict[str, Page] = {}
        self.skipped: dict[str, str] = {}
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in _SUFFIXES):
            url = path.resolve().as_uri()
            try:
                self.pages[url] = _load(path, url)
            except Exception as e:  # one unreadable file must not lose the rest
                self.skipped[str(path)] = f"{type(e).__name__}: {e}"
        self._urls = list(self.pages)
        self._terms = [
            _terms(f"{p.title}\n{strip_link_markers(p.text)}") for p in self.pages.values()
        ]
        self._bm25 = BM25Okapi(self._terms) if self._terms else None

    def search(self, query: str, topn: int) -> list[SearchResult]:
        terms = _terms(query)
        if self._bm25 is None or not terms:
            return []
        scores = self._bm25.get_scores(terms)
        wanted = set(terms)
        hits = [i for i in range(len(self._urls)) if wanted.intersection(self._terms[i])]
        hits.sort(key=lambda i: -scores[i])
        return [self._result(self._urls[i], wanted) for i in hits[:topn]]

    def _result(self, url: str, wanted: set[str]) -> SearchResult:
        page = self.pages[url]
        lines = strip_link_markers(page.text).split("\n")
        best = max(lines, key=lambda line: len(wanted.intersection(_terms(line))))
        return SearchResult(page.title, url, " ".join(best.split())[:200])

    def fetch(self, url: str) -> Page | None:
        return self.pages.get(url)


def get_backend(
    name: str, *, searxng_url: str | None = None, corpus_dir: str | os.PathLike[str] | None = None
) -> SearchBackend:
    """A backend by name: ``ddgs`` (default, keyless), ``searxng`` or ``local``."""
    if name == "ddgs":
        return DdgsBackend()
    if name == "searxng":
        url = searxng_url or os.environ.get("OSSA_SEARXNG_URL")
        if not url:
            raise ValueError("the searxng backend needs searxng_url (or OSSA_SEARXNG_URL)")
        return SearxngBackend(url)
    if name == "local":
        if corpus_dir is None:
            raise ValueError("the local backend needs corpus_dir")
        return LocalBackend(corpus_dir)
    raise ValueError(f"unknown search backend `{name}`: use ddgs, searxng or local")

"""``browser.search`` / ``browser.open`` / ``browser.find``, as gpt-oss was trained to use them.

The state is a stack of pages: every successful call pushes one, and its index is the
cursor shown as ``[n]`` and cited as ``【n†L…】``. Errors are answered in the reference
browser's words, as plain text, so the model can read them and try again.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from typing import Any

from ossa.harmony import Message, ToolNamespaceConfig
from ossa.tools.base import Tool, message_text
from ossa.tools.browser.backends import BackendError, SearchBackend, get_backend, results_page
from ossa.tools.browser.citations import CitationStream, normalize_citations
from ossa.tools.browser.fetch import Fetcher
from ossa.tools.browser.page import (
    Page,
    TokenCounter,
    ToolUsageError,
    find_in_page,
    render_view,
    truncate,
)

VIEW_SOURCE = "view-source:"


def _as_int(name: str, value: Any) -> int:
    """The model sometimes sends ``3.0`` or ``"3"`` for an integer; anything else is an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ToolUsageError(f"`{name}` should be an integer, not `{type(value).__name__}`")


class BrowserTool(Tool):
    """The built-in browser over a search backend, with a per-conversation page cache."""

    name = "browser"
    builtin = True

    def __init__(
        self,
        backend: str | SearchBackend = "ddgs",
        *,
        searxng_url: str | None = None,
        corpus_dir: str | os.PathLike[str] | None = None,
        allow_private_network: bool = False,
        view_tokens: int = 1024,
        max_search_results: int = 20,
    ) -> None:
        if isinstance(backend, str):
            backend = get_backend(backend, searxng_url=searxng_url, corpus_dir=corpus_dir)
        self.backend = backend
        self.fetcher = Fetcher(allow_private_network=allow_private_network)
        self.view_tokens = view_tokens
        self.max_search_results = max_search_results
        #: the cursor stack: ``stack[n]`` is the page shown as ``[n]``
        self.stack: list[Page] = []
        self._pages: dict[str, Page] = {}
        self._counter: TokenCounter | None = None

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig.browser()

    def answer_filter(self) -> CitationStream:
        """Citations of pages this browser showed become links (see :mod:`.citations`)."""
        return CitationStream(self)

    def close(self) -> None:
        self.backend.close()

    def call(self, message: Message) -> list[Message]:
        function = (message.recipient or "").rsplit(".", 1)[-1]
        try:
            args = json.loads(message_text(message) or "{}")
        except json.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            return [self.reply(message, json.dumps({"error": "Invalid function arguments"}))]
        handlers: dict[str, Callable[..., str]] = {
            "search": self.search,
            "open": self.open,
            "find": self.find,
        }
        if function not in handlers:
            return [self.reply(message, json.dumps({"error": f"Unknown function: {function}"}))]
        try:
            handler = handlers[function]
            try:
                inspect.signature(handler).bind(**args)
            except TypeError as e:
                raise ToolUsageError(f"Invalid arguments for `browser.{function}`: {e}") from None
            text = handler(**args)
        except (ToolUsageError, BackendError) as e:
            text = str(e)
        except Exception as e:  # a tool answers; it never takes the agent down
            text = f"Error in `browser.{function}`: {type(e).__name__}: {e}"
        return [self.reply(message, text, author=f"browser.{function}")]

    # The three functions the model calls; each returns the text of the tool message.

    def search(self, query: str, topn: int = 10, top_n: int = 10, source: str | None = None) -> str:
        """Like the reference, always asks for ``max_search_results``; topn/source are ignored."""
        del topn, top_n, source
        query = str(query)
        try:
            results = self.backend.search(query, self.max_search_results)
        except Exception as e:
            raise BackendError(f"Error during search for `{query}`: {truncate(str(e))}") from e
        self._push(results_page(query, results))
        return self._show(loc=0)

    def open(
        self,
        id: int | str = -1,
        cursor: int = -1,
        loc: int = -1,
        num_lines: int = -1,
        view_source: bool = False,
        source: str | None = None,
    ) -> str:
        """Open a URL, follow link ``id`` of page ``cursor``, or (no id) scroll that page."""
        del view_source, source  # the reference shows the same processed text either way
        loc, num_lines = _as_int("loc", loc), _as_int("num_lines", num_lines)
        hit_line = None
        if isinstance(id, str) and not id.strip().lstrip("-").isdigit():
            page = self._open_url(id.strip(), refresh=True)
        else:
            link_id = _as_int("id", id)
            current = self._page_at(_as_int("cursor", cursor))
            if link_id < 0:
                page = current
            else:
                url = current.links.get(str(link_id))
                if url is None:
                    raise ToolUsageError(f"Invalid link id `{link_id}`.")
                hit_line = (current.hit_lines or {}).get(str(link_id))
                page = self._open_url(url, refresh=False)
        self._push(page)
        if loc < 0:  # from a find result: a few lines above the hit
            loc = 0 if hit_line is None else hit_line - 4 if hit_line > 4 else hit_line
        return self._show(loc, num_lines)

    def find(self, pattern: str, cursor: int = -1) -> str:
        page = self._page_at(_as_int("cursor", cursor))
        if page.hit_lines is not None:
            raise ToolUsageError("Cannot run `find` on search results page or find results page")
        self._push(find_in_page(page, str(pattern)))
        return self._show(loc=0)

    def normalize_citations(self, text: str) -> str:
        """``【cursor†Lx-Ly】`` citations as Markdown links to the cited pages."""
        return normalize_citations(text, self.stack)

    # State.

    def _push(self, page: Page) -> None:
        self._pages[page.url] = page
        self.stack.append(page)

    def _page_at(self, cursor: int) -> Page:
        if not self.stack:
            raise ToolUsageError("No pages to access!")
        if cursor == -1:
            return self.stack[-1]
        try:
            return self.stack[cursor]
        except IndexError:
            raise ToolUsageError(
                f"Cursor `{cursor}` is out of range. "
                f"Available cursor indices: [0 - {len(self.stack) - 1}]."
            ) from None

    def _open_url(self, url: str, *, refresh: bool) -> Page:
        """A page from the cache, the backend (its own documents) or the web."""
        url = url.removeprefix(VIEW_SOURCE)
        if not refresh and url in self._pages:
            return self._pages[url]
        try:
            return self.backend.fetch(url) or self.fetcher.fetch(url)
        except Exception as e:
            raise BackendError(f"Error fetching URL `{truncate(url)}`: {truncate(str(e))}") from e

    def _show(self, loc: int = 0, num_lines: int = -1) -> str:
        """The view of the newest page; a bad ``loc`` pops it again, as in the reference."""
        if self._counter is None:
            self._counter = TokenCounter()
        try:
            return render_view(
                self.stack[-1], len(self.stack) - 1, loc, num_lines, self.view_tokens, self._counter
            )
        except ToolUsageError:
            self.stack.pop()
            raise

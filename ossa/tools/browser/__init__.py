"""The gpt-oss built-in browser: search, open and find with keyless backends and citations."""

from ossa.tools.browser.backends import (
    BackendError,
    DdgsBackend,
    KeyedBackend,
    LocalBackend,
    SearchBackend,
    SearchResult,
    SearxngBackend,
    get_backend,
)
from ossa.tools.browser.citations import CitationStream
from ossa.tools.browser.tool import BrowserTool

__all__ = [
    "BackendError",
    "BrowserTool",
    "CitationStream",
    "DdgsBackend",
    "KeyedBackend",
    "LocalBackend",
    "SearchBackend",
    "SearchResult",
    "SearxngBackend",
    "get_backend",
]

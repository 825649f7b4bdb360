"""JSON text that can always be written out as UTF-8, with nothing lost.

Python strings may hold lone surrogates (a cell that prints ``'\\ud800'``, a page whose JSON
escapes one); ``json.dumps(..., ensure_ascii=False)`` copies them raw, and writing that text to
a UTF-8 file or terminal raises ``UnicodeEncodeError``. Surrogates can only occur inside JSON
strings, so escaping them as ``\\uXXXX`` keeps the text valid JSON that loads back to the very
same string, while every other character stays readable.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")

__all__ = ["dumps"]


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` with non-ASCII kept readable and lone surrogates escaped."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

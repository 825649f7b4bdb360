"""Reading a request: the body within its size limit, and the typed checks both APIs share.

Every check raises :class:`~ossa.serve.errors.APIError` naming the parameter at fault, so a
malformed request gets one 400 the client can act on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from ossa.serve.errors import APIError, bad_request
from ossa.serve.limits import Limits

#: Reasoning efforts the APIs accept, as harmony's three levels.
EFFORTS = {
    "none": "low",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The JSON object in the body; 413 past ``max_body_bytes`` (read no further), else 400."""
    too_large = APIError(
        413,
        f"The request body is larger than this server accepts ({limits.max_body_bytes} bytes).",
        code="request_too_large",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_body_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise too_large
    try:
        data = json.loads(body)
    except ValueError:
        raise bad_request(
            "We could not parse the JSON body of your request. Send a JSON object."
        ) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def typed(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None):
    """``body[name]`` if it has type ``kind`` (None and absent give ``default``), else a 400."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        value = None  # JSON true is not a number
    if value is None or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise bad_request(f"Invalid type for '{name}': expected {_JSON.get(names, names)}.", name)
    return value


_JSON = {"str": "a string", "int": "an integer", "dict": "an object", "list": "an array"}


def number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = typed(body, name, (int, float))
    if value is not None and not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low:g} and {high:g}.", name)
    return None if value is None else float(value)


def output_limit(value: Any, name: str, limits: Limits) -> int | None:
    """The requested output limit, capped by the server's; positive integers only."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"'{name}' must be a positive integer.", name)
    return min(value, limits.max_output_tokens)


def effort(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in EFFORTS:
        raise bad_request(
            f"Invalid value for '{param}': {value!r}; supported: {', '.join(EFFORTS)}.", param
        )
    return EFFORTS[value]


def tool_name(value: Any, param: str) -> str:
    if not isinstance(value, str) or not _TOOL_NAME.fullmatch(value):
        raise bad_request(
            f"Invalid '{param}': a tool name is 1-128 letters, digits, '_' or '-'.", param
        )
    return value


def text_of(content: Any, param: str) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"Invalid '{param}': expected a string or an array of parts.", param)
    texts = []
    for i, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(kind, str) and kind in (
            "input_text",
            "output_text",
            "text",
            "summary_text",
            "reasoning_text",
        ):
            texts.append(str(part.get("text", "")))
        elif kind == "refusal":
            texts.append(str(part.get("refusal", "")))  # type: ignore[union-attr]
        else:
            raise bad_request(
                f"Invalid '{param}[{i}]': content of type {kind!r} is not supported; "
                "this server takes text.",
                f"{param}[{i}]",
                "unsupported_content",
            )
    return "".join(texts)

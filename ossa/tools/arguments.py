"""What the model sends a tool (message text, JSON arguments) and the schema it is shown.

Shared by function tools and MCP namespaces: both receive a JSON object as the message text
and both show the model a JSON Schema that harmony renders as TypeScript-like text.
"""

from __future__ import annotations

import json
from typing import Any


class ArgumentsError(ValueError):
    """The model's arguments cannot be used; the text is written for the model to read."""


def parse_arguments(text: str) -> dict[str, Any]:
    """The JSON object the model sent as arguments; blank text means no arguments."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentsError(f"Invalid JSON arguments: {exc}. Send a JSON object.") from None
    if not isinstance(value, dict):
        raise ArgumentsError(
            f"Arguments must be a JSON object, got {type(value).__name__}: {text.strip()[:200]}"
        )
    return value


# Keys whose value is one schema, a list of schemas, or a mapping of names to schemas.
_SCHEMA_KEYS = {"items", "additionalProperties", "not"}
_SCHEMA_LIST_KEYS = {"anyOf", "oneOf", "allOf", "prefixItems"}
_SCHEMA_MAP_KEYS = {"properties", "patternProperties"}


def prompt_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` reduced to what harmony renders well.

    Harmony ignores ``$ref`` and ``anyOf`` (they render as ``any``) and prints every ``title``
    as a comment, while pydantic and MCP servers emit all three. So references are inlined,
    titles and ``default: null`` dropped, and ``anyOf`` unions flattened: ``X | None`` becomes
    ``X``, unions of plain types a type list, anything else a ``oneOf``.
    """
    return _trim(schema, schema.get("$defs") or schema.get("definitions") or {}, ())


def _trim(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        ref = node["$ref"].rsplit("/", 1)[-1]
        if ref in seen or ref not in defs:
            return {k: v for k, v in node.items() if k in ("description", "default")}
        seen = (*seen, ref)
        node = {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
    if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        return _trim(node, defs, seen)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs", "definitions") or (key == "default" and value is None):
            continue
        if key in _SCHEMA_KEYS:
            out[key] = _trim(value, defs, seen)
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_trim(v, defs, seen) for v in value]
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: _trim(v, defs, seen) for name, v in value.items()}
        else:
            out[key] = value
    if isinstance(out.get("anyOf"), list):
        out = _flatten_union(out)
    return out


def _flatten_union(node: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    variants = [v for v in node["anyOf"] if v != {"type": "null"}]
    if len(variants) == 1:
        return {**variants[0], **rest}
    if variants and all(set(v) == {"type"} and isinstance(v["type"], str) for v in variants):
        return {"type": [v["type"] for v in variants], **rest}
    return {"oneOf": variants, **rest}

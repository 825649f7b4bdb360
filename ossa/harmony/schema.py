"""JSON Schema to the TypeScript-like text that describes tool parameters to gpt-oss.

This reproduces openai-harmony 0.0.8's ``json_schema_to_typescript`` branch for branch,
quirks included (see the reference, section 7): only the keys read here have any effect.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def schema_to_typescript(schema: Any, indent: str = "") -> str:
    """Render ``schema`` (any JSON value) at the given indent."""
    if not isinstance(schema, dict):
        return "any"
    one_of = schema.get("oneOf")
    if isinstance(one_of, list):
        return _top_level_one_of(one_of, indent)
    kind = schema.get("type")
    if isinstance(kind, list):
        names = ["number" if t == "integer" else t for t in kind if isinstance(t, str)]
        return " | ".join(names) if names else "any"
    if kind == "object":
        return _object(schema, indent)
    if kind == "string":
        enum = schema.get("enum")
        if isinstance(enum, list):
            values = [f'"{e}"' for e in enum if isinstance(e, str)]
            if values:
                return " | ".join(values)
        return "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        if "items" in schema:
            return schema_to_typescript(schema["items"], indent) + "[]"
        return "Array<any>"
    return "any"


def _top_level_one_of(variants: list, indent: str) -> str:
    out = []
    for variant in variants:
        out.append("\n" + indent + " | " + _variant_type(variant, indent))
        comments = []
        description = _string(variant, "description")
        if description is not None:
            comments.append(description)
        if isinstance(variant, dict) and "default" in variant:
            default = variant["default"]
            if isinstance(default, str) and not _is_enum(variant):
                comments.append(f'default: "{default}"')
            else:
                comments.append("default: " + to_json(default))
        if comments:
            out.append(" // " + " ".join(comments))
    return "".join(out)


def _variant_type(variant: Any, indent: str) -> str:
    text = schema_to_typescript(variant, indent + "   ")
    if _nullable(variant) and "null" not in text:
        text += " | null"
    return text


def _object(schema: dict, indent: str) -> str:
    out = []
    description = _string(schema, "description")
    if description is not None:
        out.append(f"{indent}// {description}\n")
    out.append("{\n")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = schema.get("required")
        required = (
            {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
        )
        for key, value in properties.items():
            out.append(_property(key, value, "" if key in required else "?", indent))
    out.append(indent + "}")
    return "".join(out)


def _property(key: str, value: Any, optional: str, indent: str) -> str:
    prop = value if isinstance(value, dict) else {}
    out = []
    title = _string(prop, "title")
    if title is not None:
        out.append(f"{indent}// {title}\n{indent}//\n")
    description = _string(prop, "description")
    if "oneOf" not in prop and description is not None:
        out.append(f"{indent}// {description}\n")
    examples = prop.get("examples")
    if isinstance(examples, list) and examples:
        out.append(f"{indent}// Examples:\n")
        out.extend(f'{indent}// - "{ex}"\n' for ex in examples if isinstance(ex, str))
    one_of = prop.get("oneOf")
    if isinstance(one_of, list):
        out.append(_property_one_of(key, prop, one_of, description, optional, indent))
        return "".join(out)
    text = schema_to_typescript(value, indent + "    ")
    if _nullable(prop) and "null" not in text:
        text += " | null"
    out.append(f"{indent}{key}{optional}: {text},")
    if "oneOf" not in prop and "default" in prop:
        out.append(" // default: " + _format_default(prop["default"], prop))
    out.append("\n")
    return "".join(out)


def _property_one_of(
    key: str, prop: dict, variants: list, description: str | None, optional: str, indent: str
) -> str:
    out = []
    repeated = (
        description is not None and variants and _string(variants[0], "description") == description
    )
    above = False
    if description is not None and not repeated:
        out.append(f"{indent}// {description}\n")
        above = True
    if "default" in prop:
        out.append(f"{indent}// default: {_format_default(prop['default'], prop)}\n")
    out.append(f"{indent}{key}{optional}:\n")
    for i, variant in enumerate(variants):
        out.append(indent + " | " + _variant_type(variant, indent))
        comments = []
        if not (i == 0 and above):
            variant_description = _string(variant, "description")
            if variant_description is not None and variant_description != description:
                comments.append(variant_description)
        if isinstance(variant, dict) and "default" in variant:
            comments.append("default: " + _format_default(variant["default"], variant))
        if comments:
            out.append(" // " + " ".join(comments))
        out.append("\n")
    out.append(indent + ",\n")
    return "".join(out)


def _string(schema: Any, key: str) -> str | None:
    value = schema.get(key) if isinstance(schema, dict) else None
    return value if isinstance(value, str) else None


def _is_enum(schema: dict) -> bool:
    enum = schema.get("enum")
    return isinstance(enum, list) and len(enum) > 0


def _nullable(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("nullable") is True


def _format_default(default: Any, schema: dict) -> str:
    if isinstance(default, str):
        return default if _is_enum(schema) else f'"{default}"'
    return to_json(default)


def to_json(value: Any) -> str:
    """Compact JSON as openai-harmony prints it after a Python -> JSON text -> Rust round trip.

    Numbers go through serde_json's parser (not correctly rounded for long or large
    literals) and are printed in ryu's layout, so they are emulated here, not formatted.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, (int, float)):
        return _format_float(_serde_f64(json.dumps(value)))
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"not a JSON value: {value!r}")


_U64_MAX = 2**64 - 1
_POW10 = [float(f"1e{i}") for i in range(309)]


def _overflows(significand: int, digit: int) -> bool:
    return significand * 10 + digit > _U64_MAX


def _serde_f64(literal: str) -> float:
    """The f64 that serde_json (without ``float_roundtrip``) reads from a JSON number."""
    if literal in ("NaN", "Infinity", "-Infinity"):
        raise ValueError(f"invalid conversation JSON: {literal} is not a JSON number")
    positive = not literal.startswith("-")
    mantissa, _, exp_text = literal.lstrip("-").lower().partition("e")
    int_digits, _, frac_digits = mantissa.partition(".")
    significand = exponent = 0
    saturated = False
    for digit in map(int, int_digits):
        if saturated or _overflows(significand, digit):
            saturated = True  # further integer digits only scale the value
            exponent += 1
        else:
            significand = significand * 10 + digit
    for digit in map(int, frac_digits):
        if _overflows(significand, digit):
            break  # further fraction digits are ignored
        significand = significand * 10 + digit
        exponent -= 1
    if exp_text:
        exponent += int(exp_text)
    value = float(significand)
    while True:
        if abs(exponent) <= 308:
            if exponent >= 0:
                value *= _POW10[exponent]
            else:
                value /= _POW10[-exponent]
            break
        if value == 0.0:
            break
        if exponent >= 0:
            value = math.inf
            break
        value /= 1e308
        exponent += 308
    if math.isinf(value):
        raise ValueError(f"invalid conversation JSON: number out of range: {literal}")
    return value if positive else -value


def _format_float(value: float) -> str:
    """ryu's layout of the shortest round-trip digits (Python's repr gives the same digits)."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    n = len(digits)
    kk = n + exponent  # value = 0.digits * 10**kk
    if n <= kk <= 16:
        text = digits + "0" * (kk - n) + ".0"
    elif 0 < kk <= 16:
        text = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        text = "0." + "0" * -kk + digits
    else:
        mantissa = digits[0] + ("." + digits[1:] if n > 1 else "")
        text = f"{mantissa}e{kk - 1}"
    return sign + text

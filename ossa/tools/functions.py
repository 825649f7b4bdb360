"""Function tools: ``@ossa.tool`` turns a typed Python function into ``functions.NAME``.

The signature and docstring give the JSON Schema the model sees in the developer message;
pydantic validates the model's JSON arguments against the same signature, so a bad call
comes back to the model as a readable validation error instead of reaching the function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, overload

import docstring_parser
import pydantic
import pydantic_core
from pydantic.experimental.arguments_schema import generate_arguments_schema

from ossa.harmony import Message, ToolDescription, ToolNamespaceConfig
from ossa.tools import aio
from ossa.tools.arguments import ArgumentsError, parse_arguments, prompt_schema
from ossa.tools.base import Tool, message_text


class FunctionTool:
    """A Python function the model can call; calling the object calls the function."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        kinds = {p.kind for p in inspect.signature(fn).parameters.values()}
        if kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
            raise TypeError(f"{fn.__qualname__}: a tool function takes named parameters only")
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name.isidentifier():
            raise ValueError(f"tool name {self.name!r} is not an identifier")
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        self.description = description or "\n\n".join(
            part for part in (doc.short_description, doc.long_description) if part
        )
        self.parameters = _parameters_schema(fn, {p.arg_name: p.description for p in doc.params})
        self._validator = pydantic_core.SchemaValidator(generate_arguments_schema(fn))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<function tool {self.name}>"

    def tool_description(self) -> ToolDescription:
        """How the function appears in the ``functions`` namespace."""
        return ToolDescription.new(self.name, self.description, parameters=self.parameters)

    def invoke(self, arguments: str) -> str:
        """Validate the model's JSON ``arguments``, call the function, serialize its result.

        Raises :class:`ArgumentsError` for arguments the function cannot take; exceptions from
        the function itself propagate.
        """
        try:
            args, kwargs = self._validator.validate_python(parse_arguments(arguments))
        except pydantic.ValidationError as exc:
            raise ArgumentsError(_validation_text(self.name, exc)) from None
        result = self.fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = aio.run(_awaited(result))
        return (
            result
            if isinstance(result, str)
            else pydantic_core.to_json(result, fallback=str).decode()
        )


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _parameters_schema(fn: Callable[..., Any], docs: dict[str, str | None]) -> dict | None:
    """The arguments' JSON Schema for the prompt, with docstring descriptions; None without any."""
    schema = prompt_schema(pydantic.TypeAdapter(fn).json_schema())
    properties = schema.get("properties") or {}
    if not properties:
        return None
    for name, prop in properties.items():
        if docs.get(name) and "description" not in prop:
            prop["description"] = docs[name]
    schema.pop("additionalProperties", None)
    return schema


def _validation_text(name: str, exc: pydantic.ValidationError) -> str:
    lines = [f"Invalid arguments for {name}:"]
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        lines.append(f"- {where}: {error['msg']}")
    return "\n".join(lines)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make ``fn`` (sync or async) a tool: ``@ossa.tool`` or ``@ossa.tool(name=..., description=...)``."""
    if fn is None:
        return lambda f: FunctionTool(f, name=name, description=description)
    return FunctionTool(fn, name=name, description=description)


class FunctionTools(Tool):
    """The ``functions`` namespace: every function tool, rendered in the developer message."""

    name = "functions"

    def __init__(self, functions: Iterable[FunctionTool]) -> None:
        self.functions: dict[str, FunctionTool] = {}
        for fn in functions:
            if fn.name in self.functions:
                raise ValueError(f"two function tools are named {fn.name!r}")
            self.functions[fn.name] = fn

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(
            name=self.name,
            description=None,
            tools=[fn.tool_description() for fn in self.functions.values()],
        )

    def call(self, message: Message) -> list[Message]:
        name = (message.recipient or "").removeprefix("functions.")
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(self.functions) or "none"
            return [self.reply(message, f"Unknown function {name!r}. Functions: {known}.")]
        try:
            return [self.reply(message, fn.invoke(message_text(message)))]
        except ArgumentsError as exc:
            return [self.reply(message, str(exc))]
        except Exception as exc:
            return [self.reply(message, f"Error: {name} raised {type(exc).__name__}: {exc}")]

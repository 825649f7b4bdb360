"""The harmony side of both APIs: the messages their inputs become, the tools clients declare.

A client's function tools become harmony function namespaces in the developer message
(``functions`` for plain ones, a namespace of their own for a ``namespace`` group), as
gpt-oss was trained to see them. They are *client-side* tools: when the model calls one,
the agent's turn ends there and the call goes back to the client, whose next request
brings the output as a tool message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ossa.harmony import Author, Message, Role, TextContent, ToolDescription, ToolNamespaceConfig
from ossa.tools.functions import FunctionTools

#: The harmony namespace of functions declared without one.
FUNCTIONS = "functions"
#: Names a client's namespace may not take: the built-ins' and the plain functions'.
RESERVED = frozenset({"browser", "python", FUNCTIONS})


@dataclass(frozen=True)
class ClientFunction:
    """One function a client declared; only its description reaches the model."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    #: "function", or "custom" for a free-form tool (its input is one string)
    kind: str = "function"

    def tool_description(self) -> ToolDescription:
        return ToolDescription.new(self.name, self.description, parameters=self.parameters or None)


class ClientFunctions(FunctionTools):
    """A namespace of the client's functions: a call ends the turn and goes to the client."""

    client_side = True

    def __init__(
        self, functions: Iterable[ClientFunction], *, namespace: str = FUNCTIONS, description=""
    ) -> None:
        super().__init__(functions)  # type: ignore[arg-type]
        self.name = namespace
        self.description = description or None

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(
            name=self.name,
            description=self.description,
            tools=[f.tool_description() for f in self.functions.values()],
        )

    def call(self, message: Message) -> list[Message]:  # the agent never calls a client tool
        return [self.reply(message, "Error: this function runs on the client.")]

    def resolve(self, recipient: str) -> ClientFunction | None:
        """The function a call's recipient names (gpt-oss may drop the ``functions.`` prefix)."""
        name = recipient.removeprefix(f"{self.name}.")
        return self.functions.get(name)  # type: ignore[return-value]


def resolve_call(
    recipient: str, namespaces: Iterable[ClientFunctions]
) -> tuple[ClientFunctions, ClientFunction] | None:
    """The client namespace and function a recipient calls, or None (a server-side tool)."""
    for namespace in namespaces:
        if recipient.startswith(f"{namespace.name}.") or namespace.name == FUNCTIONS:
            function = namespace.resolve(recipient)
            if function is not None:
                return namespace, function
    return None


def recipient_of(name: str, namespace: str | None) -> str:
    return f"{namespace or FUNCTIONS}.{name}"


def user(text: str) -> Message:
    return Message.from_role_and_content(Role.USER, text)


def assistant(text: str, channel: str = "final") -> Message:
    """An earlier answer (``final``) or chain of thought (``analysis``) the client sends back."""
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)


def call(recipient: str, arguments: str) -> Message:
    """A function call as gpt-oss writes it: on ``commentary``, JSON arguments."""
    return (
        Message.from_role_and_content(Role.ASSISTANT, arguments)
        .with_channel("commentary")
        .with_recipient(recipient)
        .with_content_type("<|constrain|>json")
    )


def tool_output(recipient: str, output: str, channel: str = "commentary") -> Message:
    """What a tool (the client's function, or a built-in) answered the call to ``recipient``."""
    message = Message.from_author_and_content(
        Author.new(Role.TOOL, recipient), TextContent(text=output)
    )
    return message.with_recipient("assistant").with_channel(channel)


def custom_arguments(text: str) -> str:
    """A free-form (``custom``) tool's input as the JSON arguments the model writes for it."""
    return json.dumps({"input": text}, ensure_ascii=False)


def custom_input(arguments: str) -> str:
    """The free-form input from the model's arguments (``{"input": ...}``, or the raw text)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return value["input"]
    return arguments


#: The parameters a free-form tool is declared with: its input is one string.
CUSTOM_PARAMETERS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's input, verbatim."}},
    "required": ["input"],
}

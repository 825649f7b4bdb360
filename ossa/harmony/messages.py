"""The harmony data model: roles, authors, contents, messages and conversations.

Names, pydantic models, defaults, fluent ``with_*`` builders (which change the object and
return it) and the JSON shape are openai-harmony 0.0.8's Python classes, so code and
conversations move unchanged from one library to the other.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from ossa.harmony import builtin_tools

# The channels gpt-oss is trained on, in the order the system message lists them.
DEFAULT_CHANNELS = ("analysis", "commentary", "final")


class Role(str, Enum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    DEVELOPER = "developer"
    TOOL = "tool"

    @classmethod
    def _missing_(cls, value: object) -> Role:
        raise ValueError(f"Unknown role: {value!r}")


class ReasoningEffort(str, Enum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class Author(BaseModel):
    role: Role
    name: str | None = None

    @classmethod
    def new(cls, role: Role, name: str) -> Author:
        return cls(role=role, name=name)


class Content(BaseModel):
    """The base of every content item (text, system, developer), as in openai-harmony."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class TextContent(Content):
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


class ToolDescription(BaseModel):
    """One callable tool; ``parameters`` is a JSON Schema rendered as TypeScript-like text."""

    name: str
    description: str
    parameters: dict | None = None

    @classmethod
    def new(cls, name: str, description: str, parameters: dict | None = None) -> ToolDescription:
        return cls(name=name, description=description, parameters=parameters)


class ChannelConfig(BaseModel):
    valid_channels: list[str]
    channel_required: bool

    @classmethod
    def require_channels(cls, channels: list[str]) -> ChannelConfig:
        return cls(valid_channels=channels, channel_required=True)


class ToolNamespaceConfig(BaseModel):
    """A namespace of tools (``functions``, ``browser``, an MCP server...)."""

    name: str
    description: str | None = None
    tools: list[ToolDescription]

    @staticmethod
    def browser() -> ToolNamespaceConfig:
        return ToolNamespaceConfig.model_validate(copy.deepcopy(builtin_tools.BROWSER))

    @staticmethod
    def python() -> ToolNamespaceConfig:
        return ToolNamespaceConfig.model_validate(copy.deepcopy(builtin_tools.PYTHON))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape openai-harmony sends (None fields left out)."""
        return self.model_dump(exclude_none=True)


def _default_channels() -> ChannelConfig:
    return ChannelConfig.require_channels(list(DEFAULT_CHANNELS))


class SystemContent(Content):
    """The system message: identity, dates, reasoning effort, channels and built-in tools.

    A field set to None is left out of the rendered text (and out of the JSON); a field
    missing from the JSON takes its default, as in openai-harmony.
    """

    model_identity: str | None = "You are ChatGPT, a large language model trained by OpenAI."
    reasoning_effort: ReasoningEffort | None = ReasoningEffort.MEDIUM
    conversation_start_date: str | None = None
    knowledge_cutoff: str | None = "2024-06"
    channel_config: ChannelConfig | None = Field(default_factory=_default_channels)
    tools: dict[str, ToolNamespaceConfig] | None = None

    @classmethod
    def new(cls) -> SystemContent:
        return cls()

    def with_model_identity(self, model_identity: str) -> SystemContent:
        self.model_identity = model_identity
        return self

    def with_reasoning_effort(self, reasoning_effort: ReasoningEffort) -> SystemContent:
        self.reasoning_effort = reasoning_effort
        return self

    def with_conversation_start_date(self, conversation_start_date: str) -> SystemContent:
        self.conversation_start_date = conversation_start_date
        return self

    def with_knowledge_cutoff(self, knowledge_cutoff: str) -> SystemContent:
        self.knowledge_cutoff = knowledge_cutoff
        return self

    def with_channel_config(self, channel_config: ChannelConfig) -> SystemContent:
        self.channel_config = channel_config
        return self

    def with_required_channels(self, channels: list[str]) -> SystemContent:
        self.channel_config = ChannelConfig.require_channels(channels)
        return self

    def with_tools(self, ns_config: ToolNamespaceConfig) -> SystemContent:
        """Add a namespace under its name (namespaces render sorted by that key)."""
        if self.tools is None:
            self.tools = {}
        self.tools[ns_config.name] = ns_config
        return self

    def with_browser_tool(self) -> SystemContent:
        return self.with_tools(ToolNamespaceConfig.browser())

    def with_python_tool(self) -> SystemContent:
        return self.with_tools(ToolNamespaceConfig.python())

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dump(exclude_none=True), "type": "system_content"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SystemContent:
        return cls.model_validate(raw)


class DeveloperContent(Content):
    """The developer message: instructions and function (or other) tool namespaces."""

    instructions: str | None = None
    tools: dict[str, ToolNamespaceConfig] | None = None

    @classmethod
    def new(cls) -> DeveloperContent:
        return cls()

    def with_instructions(self, instructions: str) -> DeveloperContent:
        self.instructions = instructions
        return self

    def with_tools(self, ns_config: ToolNamespaceConfig) -> DeveloperContent:
        if self.tools is None:
            self.tools = {}
        self.tools[ns_config.name] = ns_config
        return self

    def with_function_tools(self, tools: Sequence[ToolDescription]) -> DeveloperContent:
        return self.with_tools(
            ToolNamespaceConfig(name="functions", description=None, tools=list(tools))
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dump(exclude_none=True), "type": "developer_content"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DeveloperContent:
        return cls.model_validate(raw)


_CONTENT_TYPES: dict[str, type[Content]] = {
    "text": TextContent,
    "system_content": SystemContent,
    "developer_content": DeveloperContent,
}


def _content_from_dict(raw: dict[str, Any]) -> Content:
    kind = _CONTENT_TYPES.get(raw.get("type")) if isinstance(raw, dict) else None
    if kind is None:
        raise ValueError(f"Unknown content variant: {raw!r}")
    return kind.model_validate(raw)


class Message(BaseModel):
    """One harmony message.

    Two fields are ossa's additions, left out of ``model_dump`` and of equality (they are
    notes about how a message was read, not what it says) and written to ``to_dict`` JSON
    only when set: ``incomplete``, set by the tolerant parser on a message cut off by the
    end of the completion, and ``header_rest``, the header words it could not place (kept,
    never dropped).
    """

    author: Author
    content: list[Content] = Field(default_factory=list)
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    incomplete: bool = Field(default=False, exclude=True, repr=False)
    header_rest: str | None = Field(default=None, exclude=True, repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return _message_data(self) == _message_data(other)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_author_and_content(cls, author: Author, content: str | Content) -> Message:
        if isinstance(content, str):
            content = TextContent(text=content)
        return cls(author=author, content=[content])

    @classmethod
    def from_role_and_content(cls, role: Role, content: str | Content) -> Message:
        return cls.from_author_and_content(Author(role=role), content)

    @classmethod
    def from_role_and_contents(cls, role: Role, contents: Sequence[Content]) -> Message:
        return cls(author=Author(role=role), content=list(contents))

    def adding_content(self, content: str | Content) -> Message:
        self.content.append(TextContent(text=content) if isinstance(content, str) else content)
        return self

    def with_channel(self, channel: str) -> Message:
        self.channel = channel
        return self

    def with_recipient(self, recipient: str) -> Message:
        self.recipient = recipient
        return self

    def with_content_type(self, content_type: str) -> Message:
        self.content_type = content_type
        return self

    @property
    def text(self) -> str:
        """All text contents joined: what a parsed message says."""
        return "".join(c.text for c in self.content if isinstance(c, TextContent))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.author.role.value,
            "name": self.author.name,
            "content": [c.to_dict() for c in self.content],
        }
        if self.channel is not None:
            out["channel"] = self.channel
        if self.recipient is not None:
            out["recipient"] = self.recipient
        if self.content_type is not None:
            out["content_type"] = self.content_type
        if self.incomplete:
            out["incomplete"] = True
        if self.header_rest is not None:
            out["header_rest"] = self.header_rest
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Read openai-harmony's message JSON (content may be a plain string)."""
        if not isinstance(data, dict):
            raise ValueError(f"a message must be a JSON object, got {data!r}")
        author = Author(role=Role(_required(data, "role", "message")), name=data.get("name"))
        raw_content = _required(data, "content", "message")
        if isinstance(raw_content, str):
            raw_content = [{"type": "text", "text": raw_content}]
        if not isinstance(raw_content, list):
            raise ValueError(f"a message's content must be a string or a list, got {raw_content!r}")
        return cls(
            author=author,
            content=[_content_from_dict(c) for c in raw_content],
            channel=data.get("channel"),
            recipient=data.get("recipient"),
            content_type=data.get("content_type"),
            incomplete=bool(data.get("incomplete", False)),
            header_rest=data.get("header_rest"),
        )


def _message_data(m: Message) -> tuple[Any, ...]:
    return (m.author, m.content, m.channel, m.recipient, m.content_type)


class Conversation(BaseModel):
    messages: list[Message] = Field(default_factory=list)

    @classmethod
    def from_messages(cls, messages: Sequence[Message]) -> Conversation:
        """Pydantic's ``ValidationError`` (a ``ValueError``) on an item that is not a Message."""
        return cls(messages=list(messages))

    def __iter__(self) -> Iterator[Message]:  # type: ignore[override]
        return iter(self.messages)

    def to_dict(self) -> dict[str, Any]:
        return {"messages": [m.to_dict() for m in self.messages]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise ValueError('a conversation must be a JSON object {"messages": [...]}')
        return cls(messages=[Message.from_dict(m) for m in data["messages"]])

    @classmethod
    def from_json(cls, payload: str) -> Conversation:
        return cls.from_dict(json.loads(payload))


def _required(raw: dict[str, Any], key: str, what: str) -> Any:
    try:
        return raw[key]
    except (KeyError, TypeError):
        raise ValueError(f"{what} JSON is missing {key!r}: {raw!r}") from None

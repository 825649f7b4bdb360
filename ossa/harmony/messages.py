"""The harmony data model: roles, authors, contents, messages and conversations.

Names, defaults, fluent ``with_*`` builders (which change the object and return it) and the
JSON shape mirror openai-harmony 0.0.8's Python classes, so a conversation serialised by one
library loads unchanged in the other.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ossa.harmony import builtin_tools


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


@dataclass
class Author:
    role: Role
    name: str | None = None

    def __post_init__(self) -> None:
        self.role = Role(self.role)

    @classmethod
    def new(cls, role: Role, name: str) -> Author:
        return cls(role=role, name=name)


@dataclass
class TextContent:
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass
class ToolDescription:
    """One callable tool; ``parameters`` is a JSON Schema rendered as TypeScript-like text."""

    name: str
    description: str
    parameters: dict | None = None

    @classmethod
    def new(cls, name: str, description: str, parameters: dict | None = None) -> ToolDescription:
        return cls(name=name, description=description, parameters=parameters)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.parameters is not None:
            out["parameters"] = self.parameters
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ToolDescription:
        return cls(
            name=_required(raw, "name", "tool"),
            description=_required(raw, "description", "tool"),
            parameters=raw.get("parameters"),
        )


@dataclass
class ToolNamespaceConfig:
    """A namespace of tools (``functions``, ``browser``, an MCP server...)."""

    name: str
    description: str | None = None
    tools: list[ToolDescription] = field(default_factory=list)

    @staticmethod
    def browser() -> ToolNamespaceConfig:
        return ToolNamespaceConfig.from_dict(copy.deepcopy(builtin_tools.BROWSER))

    @staticmethod
    def python() -> ToolNamespaceConfig:
        return ToolNamespaceConfig.from_dict(copy.deepcopy(builtin_tools.PYTHON))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            out["description"] = self.description
        out["tools"] = [t.to_dict() for t in self.tools]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ToolNamespaceConfig:
        return cls(
            name=_required(raw, "name", "tool namespace"),
            description=raw.get("description"),
            tools=[ToolDescription.from_dict(t) for t in _required(raw, "tools", "tool namespace")],
        )


@dataclass
class ChannelConfig:
    valid_channels: list[str]
    channel_required: bool

    @classmethod
    def require_channels(cls, channels: list[str]) -> ChannelConfig:
        return cls(valid_channels=list(channels), channel_required=True)

    def to_dict(self) -> dict[str, Any]:
        return {"valid_channels": self.valid_channels, "channel_required": self.channel_required}


def _default_channels() -> ChannelConfig:
    return ChannelConfig.require_channels(["analysis", "commentary", "final"])


def _tools_from_dict(raw: dict[str, Any] | None) -> dict[str, ToolNamespaceConfig] | None:
    if raw is None:
        return None
    return {key: ToolNamespaceConfig.from_dict(ns) for key, ns in raw.items()}


def _tools_to_dict(tools: dict[str, ToolNamespaceConfig]) -> dict[str, Any]:
    return {key: ns.to_dict() for key, ns in tools.items()}


@dataclass
class SystemContent:
    """The system message: identity, dates, reasoning effort, channels and built-in tools.

    A field set to None is left out of the rendered text (and out of the JSON).
    """

    model_identity: str | None = "You are ChatGPT, a large language model trained by OpenAI."
    reasoning_effort: ReasoningEffort | None = ReasoningEffort.MEDIUM
    conversation_start_date: str | None = None
    knowledge_cutoff: str | None = "2024-06"
    channel_config: ChannelConfig | None = field(default_factory=_default_channels)
    tools: dict[str, ToolNamespaceConfig] | None = None

    def __post_init__(self) -> None:
        if self.reasoning_effort is not None:
            self.reasoning_effort = ReasoningEffort(self.reasoning_effort)

    @classmethod
    def new(cls) -> SystemContent:
        return cls()

    def with_model_identity(self, model_identity: str) -> SystemContent:
        self.model_identity = model_identity
        return self

    def with_reasoning_effort(self, reasoning_effort: ReasoningEffort) -> SystemContent:
        self.reasoning_effort = ReasoningEffort(reasoning_effort)
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
        values = {
            "model_identity": self.model_identity,
            "reasoning_effort": None
            if self.reasoning_effort is None
            else self.reasoning_effort.value,
            "conversation_start_date": self.conversation_start_date,
            "knowledge_cutoff": self.knowledge_cutoff,
            "channel_config": None
            if self.channel_config is None
            else self.channel_config.to_dict(),
            "tools": None if self.tools is None else _tools_to_dict(self.tools),
        }
        return {**{k: v for k, v in values.items() if v is not None}, "type": "system_content"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SystemContent:
        """Missing fields take their defaults, as openai-harmony's pydantic model does."""
        out = cls()
        for key in ("model_identity", "conversation_start_date", "knowledge_cutoff"):
            if key in raw:
                setattr(out, key, raw[key])
        if "reasoning_effort" in raw:
            effort = raw["reasoning_effort"]
            out.reasoning_effort = None if effort is None else ReasoningEffort(effort)
        if "channel_config" in raw:
            cc = raw["channel_config"]
            out.channel_config = None if cc is None else ChannelConfig(**cc)
        out.tools = _tools_from_dict(raw.get("tools"))
        return out


@dataclass
class DeveloperContent:
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
        return self.with_tools(ToolNamespaceConfig(name="functions", tools=list(tools)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.instructions is not None:
            out["instructions"] = self.instructions
        if self.tools is not None:
            out["tools"] = _tools_to_dict(self.tools)
        out["type"] = "developer_content"
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DeveloperContent:
        return cls(instructions=raw.get("instructions"), tools=_tools_from_dict(raw.get("tools")))


Content = TextContent | SystemContent | DeveloperContent


def _content_from_dict(raw: dict[str, Any]) -> Content:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return TextContent(text=_required(raw, "text", "text content"))
    if kind == "system_content":
        return SystemContent.from_dict(raw)
    if kind == "developer_content":
        return DeveloperContent.from_dict(raw)
    raise ValueError(f"Unknown content variant: {raw!r}")


@dataclass
class Message:
    """One harmony message.

    ``incomplete`` is ossa's addition: the tolerant parser sets it on a message cut off by
    the end of the completion. It is written to JSON only when true.
    """

    author: Author
    content: list[Content] = field(default_factory=list)
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    incomplete: bool = False

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
        return cls(
            author=author,
            content=[_content_from_dict(c) for c in raw_content],
            channel=data.get("channel"),
            recipient=data.get("recipient"),
            content_type=data.get("content_type"),
            incomplete=bool(data.get("incomplete", False)),
        )


@dataclass
class Conversation:
    messages: list[Message] = field(default_factory=list)

    @classmethod
    def from_messages(cls, messages: Sequence[Message]) -> Conversation:
        for m in messages:
            if not isinstance(m, Message):
                raise TypeError(f"Conversation.from_messages takes Message objects, got {m!r}")
        return cls(messages=list(messages))

    def __iter__(self) -> Iterator[Message]:
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

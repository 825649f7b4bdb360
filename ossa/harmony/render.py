"""Message and conversation rendering: the text of system/developer contents and the tokens.

Each text piece (role, name, recipient, channel, content type, every content item) is
encoded on its own, as openai-harmony does, so BPE merges never cross piece boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ossa.harmony import tokenizer as tk
from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import (
    DeveloperContent,
    Message,
    Role,
    SystemContent,
    TextContent,
    ToolNamespaceConfig,
)
from ossa.harmony.schema import schema_to_typescript

CONSTRAIN_MARKER = "<|constrain|>"
_EFFORT_WORDS = {"Low": "low", "Medium": "medium", "High": "high"}
FUNCTIONS_LINE = "Calls to these tools must go to the commentary channel: 'functions'."

Encode = Callable[[str], list[int]]


def rust_lines(text: str) -> list[str]:
    """Rust's ``str::lines``: split on ``\\n``; only terminated lines lose a trailing ``\\r``."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
        terminated = len(parts)
    else:
        terminated = len(parts) - 1
    return [p[:-1] if i < terminated and p.endswith("\r") else p for i, p in enumerate(parts)]


def tools_section(tools: dict[str, ToolNamespaceConfig]) -> str:
    """The ``# Tools`` section: namespaces sorted by key, each tool as a TypeScript type."""
    sections = ["# Tools"]
    for key in sorted(tools):
        ns = tools[key]
        lines = [f"## {ns.name}\n"]
        if ns.description is not None:
            prefix = "// " if ns.tools else ""
            lines.extend(prefix + line for line in rust_lines(ns.description))
        if ns.tools:
            lines.append(f"namespace {ns.name} {{\n")
            for tool in ns.tools:
                lines.extend("// " + line for line in rust_lines(tool.description))
                if tool.parameters is not None:
                    params = schema_to_typescript(tool.parameters, "")
                    lines.append(f"type {tool.name} = (_: {params}) => any;\n")
                else:
                    lines.append(f"type {tool.name} = () => any;\n")
            lines.append(f"}} // namespace {ns.name}")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def system_text(content: SystemContent, has_function_tools: bool) -> str:
    sections = []
    top = []
    if content.model_identity is not None:
        top.append(content.model_identity)
    if content.knowledge_cutoff is not None:
        top.append("Knowledge cutoff: " + content.knowledge_cutoff)
    if content.conversation_start_date is not None:
        top.append("Current date: " + content.conversation_start_date)
    if top:
        sections.append("\n".join(top))
    if content.reasoning_effort is not None:
        sections.append("Reasoning: " + _EFFORT_WORDS[content.reasoning_effort.value])
    if content.tools:
        sections.append(tools_section(content.tools))
    channels = content.channel_config
    if channels is not None and channels.valid_channels:
        line = "# Valid channels: " + ", ".join(channels.valid_channels) + "."
        if channels.channel_required:
            line += " Channel must be included for every message."
        if has_function_tools:
            line += "\n" + FUNCTIONS_LINE
        sections.append(line)
    return "\n\n".join(sections)


def developer_text(content: DeveloperContent) -> str:
    sections = []
    if content.instructions is not None:
        sections += ["# Instructions", content.instructions]
    if content.tools:
        sections.append(tools_section(content.tools))
    return "\n\n".join(sections)


def has_function_tools(messages: Sequence[Message]) -> bool:
    """True when a developer message declares at least one tool in ``functions``."""
    return any(_declares_functions(c) for m in messages for c in m.content)


def _declares_functions(content: object) -> bool:
    if not isinstance(content, DeveloperContent) or not content.tools:
        return False
    functions = content.tools.get("functions")
    return functions is not None and len(functions.tools) > 0


def render_message(message: Message, encode: Encode, function_tools: bool = False) -> list[int]:
    """One message: ``<|start|>header<|message|>content<|end|>`` (``<|call|>`` for tool calls)."""
    role = message.author.role
    name = message.author.name
    out = [tk.START]
    if role is Role.TOOL:
        if name is None:
            raise HarmonyError("Tools should have a name!")
        out += encode(name)
    else:
        out += encode(role.value)
        if name is not None:
            out += encode(":" + name)
    if message.recipient is not None and message.recipient != "all":
        out += encode(" to=" + message.recipient)
    if message.channel is not None:
        out.append(tk.CHANNEL)
        out += encode(message.channel)
    content_type = message.content_type
    if content_type is not None:
        if content_type.startswith(CONSTRAIN_MARKER):
            out += encode(" ")
            out.append(tk.CONSTRAIN)
            rest = content_type[len(CONSTRAIN_MARKER) :]
            if rest:
                out += encode(rest)
        else:
            out += encode(" " + content_type)
    out.append(tk.MESSAGE)
    for c in message.content:
        out += encode(_content_text(c, role, function_tools))
    out.append(tk.CALL if role is Role.ASSISTANT and message.recipient is not None else tk.END)
    return out


def _content_text(content: object, role: Role, function_tools: bool) -> str:
    if isinstance(content, TextContent):
        return content.text
    debug_role = role.value.capitalize()
    if isinstance(content, SystemContent):
        if role is not Role.SYSTEM:
            raise HarmonyError(
                f"SystemContent may only appear in system messages, found in {debug_role}"
            )
        return system_text(content, function_tools)
    if isinstance(content, DeveloperContent):
        if role is not Role.DEVELOPER:
            raise HarmonyError(
                f"DeveloperContent may only appear in developer messages, found in {debug_role}"
            )
        return developer_text(content)
    raise HarmonyError(f"unsupported content: {content!r}")


def render_messages(
    messages: Sequence[Message], encode: Encode, auto_drop_analysis: bool = True
) -> list[int]:
    """A conversation, dropping analysis before the first final when the last answer is final.

    That is openai-harmony's rule as implemented (not "drop every earlier turn's CoT").
    """
    function_tools = has_function_tools(messages)
    drop_before = -1
    if auto_drop_analysis and _last_assistant_is_final(messages):
        drop_before = next((i for i, m in enumerate(messages) if m.channel == "final"), -1)
    out: list[int] = []
    for i, message in enumerate(messages):
        if i < drop_before and message.channel == "analysis":
            continue
        out += render_message(message, encode, function_tools)
    return out


def _last_assistant_is_final(messages: Sequence[Message]) -> bool:
    for message in reversed(messages):
        if message.author.role is Role.ASSISTANT:
            return message.channel == "final"
    return False

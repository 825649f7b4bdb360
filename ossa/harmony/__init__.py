"""The harmony chat format of gpt-oss: tokenizer, data model, renderer and streaming parser.

A drop-in for openai-harmony 0.0.8 in pure Python: the same names, pydantic models,
defaults, errors, JSON and tokens, so code written for it runs unchanged with
``import ossa.harmony as openai_harmony``. ossa adds the tolerant parser
(``strict=False``, the agent's mode) for the malformed output gpt-oss really produces.
"""

from ossa.harmony.encoding import (
    HarmonyEncoding,
    HarmonyEncodingName,
    RenderConversationConfig,
    RenderOptions,
    load_harmony_encoding,
)
from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import (
    Author,
    ChannelConfig,
    Content,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
    ToolNamespaceConfig,
)
from ossa.harmony.parser import StreamableParser, StreamState
from ossa.harmony.tokenizer import raise_disallowed_special_token
from ossa.harmony.tolerant import TolerantParser

__all__ = [
    "Author",
    "ChannelConfig",
    "Content",
    "Conversation",
    "DeveloperContent",
    "HarmonyEncoding",
    "HarmonyEncodingName",
    "HarmonyError",
    "Message",
    "ReasoningEffort",
    "RenderConversationConfig",
    "RenderOptions",
    "Role",
    "StreamState",
    "StreamableParser",
    "SystemContent",
    "TextContent",
    "TolerantParser",
    "ToolDescription",
    "ToolNamespaceConfig",
    "load_harmony_encoding",
    "raise_disallowed_special_token",
]

"""The harmony chat format of gpt-oss: tokenizer, data model, renderer and streaming parser.

The API mirrors openai-harmony 0.0.8 (names, defaults, JSON, tokens) in pure Python; the
parser adds a tolerant mode, the default, for the malformed output gpt-oss really produces.
"""

from ossa.harmony.encoding import (
    HarmonyEncoding,
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

__all__ = [
    "Author",
    "ChannelConfig",
    "Content",
    "Conversation",
    "DeveloperContent",
    "HarmonyEncoding",
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
    "ToolDescription",
    "ToolNamespaceConfig",
    "load_harmony_encoding",
]

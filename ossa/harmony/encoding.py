"""``HarmonyEncoding``: the tokenizer, renderer and parser behind openai-harmony's API."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from enum import Enum
from functools import cache, cached_property
from typing import Literal

from pydantic import BaseModel

from ossa.harmony import render
from ossa.harmony import tokenizer as tk
from ossa.harmony.errors import HarmonyError
from ossa.harmony.messages import Conversation, Message, Role
from ossa.harmony.parser import parse_completion


class HarmonyEncodingName(str, Enum):
    """The encodings ``load_harmony_encoding`` knows (gpt-oss has one)."""

    HARMONY_GPT_OSS = "HarmonyGptOss"

    def __str__(self) -> str:
        return str(self.value)


class RenderConversationConfig(BaseModel):
    """``auto_drop_analysis``: drop analysis before the first final once the answer is final."""

    auto_drop_analysis: bool = True


class RenderOptions(BaseModel):
    conversation_has_function_tools: bool = False


Messages = Conversation | Sequence[Message]


def _messages(conversation: Messages) -> Sequence[Message]:
    return conversation.messages if isinstance(conversation, Conversation) else conversation


def _drop(config: RenderConversationConfig | None) -> bool:
    return True if config is None else config.auto_drop_analysis


class HarmonyEncoding:
    """The ``HarmonyGptOss`` encoding on ``o200k_harmony``."""

    tokenizer_name = "o200k_harmony"

    def __init__(self, tokenizer: tk.Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._encode = tokenizer.encode_ordinary

    @property
    def name(self) -> str:
        return HarmonyEncodingName.HARMONY_GPT_OSS.value

    @cached_property
    def special_tokens_set(self) -> set[str]:
        return set(self.tokenizer.special_tokens_set)

    # -- rendering ------------------------------------------------------------------------

    def render(self, message: Message, render_options: RenderOptions | None = None) -> list[int]:
        """One message; nothing is dropped."""
        function_tools = (
            render_options is not None and render_options.conversation_has_function_tools
        )
        return render.render_message(message, self._encode, function_tools)

    def render_conversation(
        self, conversation: Messages, config: RenderConversationConfig | None = None
    ) -> list[int]:
        return render.render_messages(_messages(conversation), self._encode, _drop(config))

    def render_conversation_for_completion(
        self,
        conversation: Messages,
        next_turn_role: Role,
        config: RenderConversationConfig | None = None,
    ) -> list[int]:
        """The prompt: the conversation, then ``<|start|>`` and the next speaker's role."""
        out = self.render_conversation(conversation, config)
        return out + [tk.START] + self._encode(Role(next_turn_role).value)

    def render_conversation_for_training(
        self, conversation: Messages, config: RenderConversationConfig | None = None
    ) -> list[int]:
        """As ``render_conversation``, but a final assistant answer ends with ``<|return|>``."""
        messages = _messages(conversation)
        out = self.render_conversation(messages, config)
        last = messages[-1] if messages else None
        ends_final = last is not None and last.author.role is Role.ASSISTANT
        if ends_final and last.channel == "final" and out:
            out[-1] = tk.RETURN
        return out

    # -- parsing --------------------------------------------------------------------------

    def parse_messages_from_completion_tokens(
        self, tokens: Sequence[int], role: Role | None = None, *, strict: bool = True
    ) -> list[Message]:
        """Parse sampled tokens (not the prompt); ``strict=False`` is ossa's tolerant parser."""
        return parse_completion(self, list(tokens), role, strict)

    # -- tokens ---------------------------------------------------------------------------

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = frozenset(),
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        return self.tokenizer.encode(
            text, allowed_special=allowed_special, disallowed_special=disallowed_special
        )

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return self.tokenizer.decode_bytes(tokens)

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        return self.decode_bytes(tokens).decode("utf-8", errors=errors)

    def decode_utf8(self, tokens: Sequence[int]) -> str:
        """Decode, refusing invalid UTF-8."""
        try:
            data = self.decode_bytes(tokens)
        except HarmonyError as exc:
            raise HarmonyError(f"Could not decode tokens: Invalid token error: {exc}") from None
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise HarmonyError(
                f"Could not decode tokens: Invalid utf-8 sequence: {tk.describe_utf8_error(exc)}"
            ) from None

    def is_special_token(self, token: int) -> bool:
        return self.tokenizer.is_special_token(token)

    def stop_tokens(self) -> list[int]:
        """The tokens that end a message."""
        return list(tk.STOP_TOKENS)

    def stop_tokens_for_assistant_actions(self) -> list[int]:
        """The tokens to stop sampling on: ``<|end|>`` only separates messages."""
        return list(tk.ACTION_STOP_TOKENS)


def load_harmony_encoding(
    name: str | HarmonyEncodingName = HarmonyEncodingName.HARMONY_GPT_OSS,
) -> HarmonyEncoding:
    """The gpt-oss encoding from the vocabulary shipped with ossa (loaded once).

    openai-harmony requires the name; ossa defaults it to the only one there is.
    """
    try:
        HarmonyEncodingName(str(name))
    except ValueError:
        raise ValueError(f"Invalid HarmonyEncodingName: {name}") from None
    return _load()


@cache
def _load() -> HarmonyEncoding:
    return HarmonyEncoding(tk.load_tokenizer())

"""The conversation as the engine sees it: each message with the exact tokens it renders to.

An engine's KV cache holds the prompt and the completion *as generated*. Re-rendering a
completion from its parsed messages would not give the same tokens back (harmony renders a
tool call's ``to=`` before the channel, gpt-oss often writes it after; a refusal may have no
header at all), and the next prompt would diverge from the cache at that point. So each
assistant message keeps the tokens it was generated as, and a prompt is those tokens plus
the rendering of everything else: within a turn, every prompt extends the last prompt and
its completion exactly, and the engine prefills only what is new (tool output, headers).

Chain of thought is dropped as gpt-oss's harmony guide asks: messages on the ``analysis``
channel before the latest final answer are left out. (openai-harmony's renderer drops only
those before the *first* final answer, and only while the last assistant message is final,
so an earlier turn's reasoning would come back during the next turn's tool calls and the
cache would diverge there.) Across turns, then, a prompt diverges from the cache only at
the first message this rule drops.

A generated message ending with ``<|return|>`` is kept ending with ``<|end|>``, as harmony
writes a finished answer into a conversation.
"""

from __future__ import annotations

from collections.abc import Sequence

from ossa.agent import budget
from ossa.harmony import HarmonyEncoding, Message, RenderOptions, Role
from ossa.harmony.render import has_function_tools

#: Exact tokens of a message, or None where the message is rendered by harmony.
Tokens = list[int] | None


class Context:
    """Messages and their exact tokens, in step; renders prompts for the next completion."""

    def __init__(
        self,
        encoding: HarmonyEncoding,
        messages: Sequence[Message] = (),
        tokens: Sequence[Tokens] | None = None,
    ) -> None:
        self.encoding = encoding
        self.messages: list[Message] = list(messages)
        self.tokens: list[Tokens] = list(tokens) if tokens is not None else [None] * len(messages)
        if len(self.tokens) != len(self.messages):
            raise ValueError(f"{len(self.tokens)} token lists for {len(self.messages)} messages")
        special = {t: encoding.encode(t, allowed_special="all")[0] for t in _SPECIAL}
        self._start = special["<|start|>"]
        self._end = special["<|end|>"]
        self._ends = frozenset((self._end, special["<|call|>"], special["<|return|>"]))
        self._return = special["<|return|>"]
        #: What every prompt ends with: the assistant's header, which its completion continues.
        self.prompt_tail = [self._start, *encoding.encode(Role.ASSISTANT.value)]

    def append(self, message: Message, tokens: Tokens = None) -> None:
        self.messages.append(message)
        self.tokens.append(tokens)

    def replace_header(self, header: list[Message]) -> None:
        """New leading system/developer messages (rendered: they were never generated)."""
        n = budget.leading_header_length(self.messages)
        self.messages[:n] = header
        self.tokens[:n] = [None] * len(header)

    def visible(self, messages: Sequence[Message] | None = None) -> list[Message]:
        """``messages`` (default: all) without the chain of thought the model no longer sees."""
        messages = self.messages if messages is None else messages
        last_final = max(
            (
                i
                for i, m in enumerate(messages)
                if m.author.role is Role.ASSISTANT and m.channel == "final"
            ),
            default=-1,
        )
        return [m for i, m in enumerate(messages) if i >= last_final or m.channel != "analysis"]

    def render(self, messages: Sequence[Message] | None = None) -> list[int]:
        """The prompt for the next completion: the visible ``messages`` (default: all), the tail.

        ``messages`` may be a fitted copy of the conversation (see :mod:`.budget`): a message
        that is one of this context's objects keeps its exact tokens, a shortened one is
        rendered.
        """
        messages = self.visible(messages)
        exact = {id(m): t for m, t in zip(self.messages, self.tokens, strict=True)}
        options = RenderOptions(conversation_has_function_tools=has_function_tools(messages))
        out: list[int] = []
        for message in messages:
            tokens = exact.get(id(message))
            out += tokens if tokens is not None else self.encoding.render(message, options)
        return out + self.prompt_tail

    def split(self, generated: list[int], count: int) -> list[Tokens]:
        """The exact tokens of each of the ``count`` messages parsed from ``generated``.

        The completion continues the prompt's tail, so the messages are the tail and the
        generated tokens cut before each ``<|start|>``. Where that does not give ``count``
        messages each closed by an end token (output the tolerant parser repaired, a
        completion cut by the token limit), the messages concerned are rendered instead.
        """
        chunks: list[list[int]] = []
        for token in [*self.prompt_tail, *generated]:
            if token == self._start or not chunks:
                chunks.append([])
            chunks[-1].append(token)
        if len(chunks) != count:
            return [None] * count
        return [self._closed(chunk) for chunk in chunks]

    def _closed(self, chunk: list[int]) -> Tokens:
        if chunk[-1] not in self._ends or any(t in self._ends for t in chunk[:-1]):
            return None
        return chunk[:-1] + [self._end] if chunk[-1] == self._return else chunk


_SPECIAL = ("<|start|>", "<|end|>", "<|call|>", "<|return|>")

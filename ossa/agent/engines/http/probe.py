"""The check every HTTP engine makes on connect: does the server tokenize harmony as ossa does?

ossa renders prompts and parses completions itself, token for token, so a server whose
vocabulary differs (another model, a tokenizer without harmony's special tokens, an old
build that splits ``<|start|>`` into text) would answer garbage from the first turn. The
probe text holds every special token a conversation uses; the server tokenizes it (its
tokenize endpoint, or a one-token completion that reports the prompt's length) and any
difference is an error naming the first token that differs, before the first turn.
"""

from __future__ import annotations

from ossa.agent.engines.base import EngineError
from ossa.harmony import load_harmony_encoding

__all__ = ["PROBE", "check_count", "check_tokens", "probe_tokens"]

PROBE = (
    "<|start|>system<|message|>ossa probe: Grüße, 数字 12345<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>"
    "<|start|>assistant<|channel|>final<|message|>ok<|return|>"
)


def probe_tokens() -> list[int]:
    """The probe as ossa tokenizes it."""
    return load_harmony_encoding().encode(PROBE, allowed_special="all")


def check_tokens(where: str, got: list[int]) -> None:
    """Raise unless the server's tokenization of :data:`PROBE` equals ossa's."""
    want = probe_tokens()
    if got == want:
        return
    encoding = load_harmony_encoding()
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    at = min(len(got), len(want)) if at is None else at
    piece = encoding.decode(want[at : at + 1]) if at < len(want) else "(end)"
    raise EngineError(
        f"{where} does not tokenize harmony as gpt-oss does: at token {at} ({piece!r}) it has "
        f"{got[at : at + 3]} where ossa has {want[at : at + 3]}; is it serving a gpt-oss model?"
    )


def check_count(where: str, counted: int) -> None:
    """Raise unless a server that only reports counts saw :data:`PROBE` as ossa's length."""
    want = len(probe_tokens())
    if counted != want:
        raise EngineError(
            f"{where} does not tokenize harmony as gpt-oss does: the probe is {counted} tokens "
            f"there and {want} in ossa; is it serving a gpt-oss model?"
        )

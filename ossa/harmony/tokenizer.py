"""The o200k_harmony tokenizer: o200k_base ranks plus harmony's own special-token table.

tiktoken's built-in ``o200k_harmony`` differs from openai-harmony (it keeps
``<|endofprompt|>`` at 200018 and stops at 201087), so the table is built here from the
reference. The ranks ship inside the package so nothing is downloaded.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from functools import cache
from importlib import resources
from typing import Literal

import tiktoken

from ossa.harmony.errors import HarmonyError

VOCAB_FILE = "o200k_base.tiktoken"
VOCAB_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

# Identical to tiktoken's o200k_base split pattern.
PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

START = 200006
END = 200007
MESSAGE = 200008
CHANNEL = 200005
CONSTRAIN = 200003
RETURN = 200002
CALL = 200012
FIRST_SPECIAL = 199998
VOCAB_SIZE = 201089

_NAMED_SPECIALS = {
    199998: "<|startoftext|>",
    199999: "<|endoftext|>",
    RETURN: "<|return|>",
    CONSTRAIN: "<|constrain|>",
    CHANNEL: "<|channel|>",
    START: "<|start|>",
    END: "<|end|>",
    MESSAGE: "<|message|>",
    CALL: "<|call|>",
}


def special_token_table() -> dict[str, int]:
    """Harmony's 1,091 special tokens (ids 199998..201088), every other id named reserved."""
    return {
        _NAMED_SPECIALS.get(i, f"<|reserved_{i}|>"): i for i in range(FIRST_SPECIAL, VOCAB_SIZE)
    }


def read_ranks(data: bytes) -> dict[bytes, int]:
    """Check the vocabulary's sha256 and parse its ``base64(token) rank`` lines."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != VOCAB_SHA256:
        raise HarmonyError(
            f"invalid tiktoken vocab file {VOCAB_FILE}: hash mismatch: "
            f"computed={digest}, expected={VOCAB_SHA256} (reinstall ossa)"
        )
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


class Tokenizer:
    """tiktoken's BPE with the harmony table, plus a per-id byte table for fast decoding."""

    def __init__(self, ranks: dict[bytes, int]) -> None:
        self.special_tokens = special_token_table()
        self._tiktoken = tiktoken.Encoding(
            "o200k_harmony",
            pat_str=PAT_STR,
            mergeable_ranks=ranks,
            special_tokens=self.special_tokens,
        )
        table = [b""] * VOCAB_SIZE  # the hash-checked ranks fill 0..199997
        for token, rank in ranks.items():
            table[rank] = token
        for text, rank in self.special_tokens.items():
            table[rank] = text.encode()
        self.token_bytes: list[bytes] = table  # id -> bytes, for O(1) streaming decode
        self.special_tokens_set = frozenset(self.special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        """BPE-encode text with special-token look-alikes as plain text (the renderer's rule)."""
        return self._tiktoken.encode_ordinary(text)

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = frozenset(),
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """tiktoken's encode: refuses special-token text unless allowed."""
        try:
            return self._tiktoken.encode(
                text, allowed_special=allowed_special, disallowed_special=disallowed_special
            )
        except ValueError as exc:
            raise HarmonyError(str(exc)) from None

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Concatenate each id's bytes; an id outside the vocabulary is an error."""
        for token in tokens:
            if not self.is_valid(token):
                raise HarmonyError(f"Invalid token for decoding: {token}")
        table = self.token_bytes
        return b"".join([table[t] for t in tokens])

    def is_valid(self, token: int) -> bool:
        return 0 <= token < VOCAB_SIZE

    def is_special_token(self, token: int) -> bool:
        return FIRST_SPECIAL <= token < VOCAB_SIZE


def describe_utf8_error(exc: UnicodeDecodeError) -> str:
    """Word a UTF-8 error as Rust's ``Utf8Error`` does (openai-harmony's messages use it)."""
    if exc.reason == "unexpected end of data":
        return f"incomplete utf-8 byte sequence from index {exc.start}"
    return f"invalid utf-8 sequence of {exc.end - exc.start} bytes from index {exc.start}"


@cache
def load_tokenizer() -> Tokenizer:
    """Load the shipped vocabulary once per process."""
    data = resources.files("ossa").joinpath("data", VOCAB_FILE).read_bytes()
    return Tokenizer(read_ranks(data))

"""The o200k_harmony tokenizer: o200k_base ranks plus harmony's own special-token table.

tiktoken's built-in ``o200k_harmony`` differs from openai-harmony (it keeps
``<|endofprompt|>`` at 200018 and stops at 201087), so the table is built here from the
reference. The ranks ship inside the package so nothing is downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from functools import cache, lru_cache
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
# The one definition of harmony's stop tokens. Each ends a message; sampling stops only on
# the action ones, since <|end|> separates messages inside one completion.
STOP_TOKENS = (RETURN, END, CALL)
ACTION_STOP_TOKENS = (RETURN, CALL)
# openai-harmony takes ids as Rust u32: anything outside raises OverflowError before use.
_U32_END = 2**32

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
        """tiktoken's encode: refuses special-token text unless allowed (openai-harmony's rule)."""
        if allowed_special == "all":
            allowed_special = self.special_tokens_set
        if disallowed_special == "all":
            disallowed_special = self.special_tokens_set - set(allowed_special)
        if disallowed_special:
            match = _special_token_regex(frozenset(disallowed_special)).search(text)
            if match:
                raise_disallowed_special_token(match.group())
        return self._tiktoken.encode(
            text, allowed_special=set(allowed_special), disallowed_special=()
        )

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Concatenate each id's bytes; an id outside the vocabulary is an error."""
        for token in tokens:
            if not self.is_valid(token):
                check_u32(token)
                raise HarmonyError(f"Invalid token for decoding: {token}")
        table = self.token_bytes
        return b"".join([table[t] for t in tokens])

    def is_valid(self, token: int) -> bool:
        return 0 <= token < VOCAB_SIZE

    def is_special_token(self, token: int) -> bool:
        check_u32(token)
        return FIRST_SPECIAL <= token < VOCAB_SIZE


@lru_cache(maxsize=8)
def _special_token_regex(tokens: frozenset[str]) -> re.Pattern[str]:
    return re.compile("(" + "|".join(re.escape(t) for t in tokens) + ")")


def raise_disallowed_special_token(token: str) -> None:
    """openai-harmony's error for special-token text that ``encode`` was not allowed to use."""
    raise HarmonyError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{'{token}', ...}}`.\n"
        "If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{'{token}'}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def check_u32(token: int) -> None:
    """Refuse an id openai-harmony could not even take (negative, or 2**32 and up)."""
    if not 0 <= token < _U32_END:
        raise OverflowError("out of range integral type conversion attempted")


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

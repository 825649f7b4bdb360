"""The o200k_harmony tokenizer: the shipped vocabulary, harmony's special table, encode/decode."""

from __future__ import annotations

import pytest

from ossa.harmony import HarmonyError
from ossa.harmony import tokenizer as tk


def test_vocabulary_hash_is_checked():
    with pytest.raises(HarmonyError, match="hash mismatch"):
        tk.read_ranks(b"aGk= 0\n")


def test_special_table_is_harmony_not_tiktoken(enc):
    table = tk.special_token_table()
    assert len(table) == 1091
    assert table["<|start|>"] == 200006 and table["<|reserved_201088|>"] == 201088
    assert "<|endofprompt|>" not in table
    assert enc.decode([200018, 201088]) == "<|reserved_200018|><|reserved_201088|>"


def test_encode_refuses_special_text_by_default(enc, oracle):
    with pytest.raises(HarmonyError, match="disallowed special token"):
        enc.encode("say <|end|>")
    assert enc.encode("say <|end|>", allowed_special="all") == oracle.encode(
        "say <|end|>", allowed_special="all"
    )
    assert enc.encode("say <|end|>", disallowed_special=()) == oracle.encode(
        "say <|end|>", disallowed_special=()
    )


@pytest.mark.parametrize(
    "text", ["hello world", "<|end|> as text", "naïve 日本語 🙂\r\n\t  x", "", "1234567 it's"]
)
def test_ordinary_encoding_and_decoding_match_oracle(enc, oracle, text):
    tokens = enc.tokenizer.encode_ordinary(text)
    assert tokens == oracle.encode(text, disallowed_special=())
    assert enc.decode_utf8(tokens) == text == oracle.decode_utf8(tokens)


@pytest.mark.parametrize("tokens", [[9552], [9552, 9552], [9552, 1, 2]])
def test_decode_errors_match_oracle(enc, oracle, tokens):
    # 9552 is a space plus the first two bytes of a 4-byte sequence.
    assert enc.decode(tokens) == oracle.decode(tokens)
    with pytest.raises(HarmonyError) as ours:
        enc.decode_utf8(tokens)
    with pytest.raises(Exception) as theirs:
        oracle.decode_utf8(tokens)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(HarmonyError, match="Invalid token for decoding: 201089"):
        enc.decode([1, 201089])
    with pytest.raises(OverflowError):  # not a u32 at all: openai-harmony's OverflowError
        enc.decode([1, -1])


def test_stop_tokens(enc, oracle):
    assert sorted(enc.stop_tokens()) == sorted(oracle.stop_tokens()) == [200002, 200007, 200012]
    assert sorted(enc.stop_tokens_for_assistant_actions()) == sorted(
        oracle.stop_tokens_for_assistant_actions()
    )
    assert enc.is_special_token(200006) and not enc.is_special_token(1428)


def test_load_is_cached():
    from ossa.harmony import load_harmony_encoding

    assert load_harmony_encoding() is load_harmony_encoding()

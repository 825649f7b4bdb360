"""Strict mode gives openai-harmony 0.0.8's messages and errors, token by token."""

from __future__ import annotations

import pytest

from ossa.harmony import Role, StreamableParser, StreamState


def tokens_of(enc, text: str) -> list[int]:
    return enc.encode(text, allowed_special="all")


COMPLETIONS = [
    # well-formed shapes
    "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary"
    ' to=functions.get_weather <|constrain|>json<|message|>{"city":"SF"}<|call|>',
    "<|channel|>final<|message|>Hi<|return|>",
    "<|channel|>final<|message|>no stop token at the end",
    "<|channel|>commentary to=functions.f json<|message|>{}<|call|>",
    "<|channel|>analysis to=python code<|message|>print(1)<|call|>",
    "<|channel|>commentary functions.f<|message|>{}<|call|>",
    "<|channel|>final json<|message|>{}<|end|>",
    "<|channel|>final <|constrain|>json<|message|>{}<|end|>",
    "to=functions.f<|channel|>commentary<|constrain|>json<|message|>{}<|call|>",
    # malformed shapes users hit
    "I must refuse<|end|><|start|>assistant<|channel|>analysis<|message|>x<|end|>",
    "<|start|>assistant<|channel|>final<|message|>repeated start<|end|>",
    "<|channel|>final<|message|>a<|end|><|return|>",
    "<|channel|>final<|message|>a<|end|>text after end",
    "<|channel|><|message|>x<|end|>",
    "<|channel|> final<|message|>x<|end|>",
    "<|channel|>final<|channel|>x<|message|>y<|end|>",
    "<|channel|>fi<nal<|message|>y<|end|>",
    "<|channel|>commentary a b c<|message|>y<|end|>",
    '<|channel|>commentary \u3000a\t"b\\ c d<|message|>y<|end|>',
    "<|channel|>final<|message|>a<|start|>assistant<|channel|>final<|message|>b<|end|>",
    "<|channel|>final<|message|>special <|constrain|><|reserved_200100|> text<|end|>",
    "<|channel|>final",
    "",
]
COMPLETIONS_FROM_START = [
    "<|start|>assistant<|channel|>final<|message|>a<|end|>",
    "<|start|>functions.f to=assistant<|channel|>commentary<|message|>{}<|end|>",
    "<|start|>functions.f<|message|>{}<|end|>",
    "<|start|>bogus to=x<|message|>{}<|end|>",
    "<|start|>to=functions.f<|message|>{}<|end|>",
    "<|start|>tool<|message|>{}<|end|>",
    "<|start|>user:alice<|message|>hi<|end|>",
    "<|start|><|message|>hi<|end|>",
    "<|start|><|start|>assistant<|message|>hi<|end|>",
    "<|start|>assistant<|channel|>final<|channel|>x<|message|>y<|end|>",
    "<|start|>assistant I must refuse<|end|>",
    "hello",
    "<|return|>",
    "<|start|>assistant<|channel|>final<|message|>a<|end|><|start|>",
]


@pytest.mark.parametrize("text", COMPLETIONS)
def test_completion_with_role(enc, parse_both, text):
    ours, theirs = parse_both(tokens_of(enc, text), Role.ASSISTANT)
    assert ours == theirs


@pytest.mark.parametrize("text", COMPLETIONS_FROM_START)
def test_completion_from_start(enc, parse_both, text):
    ours, theirs = parse_both(tokens_of(enc, text), None)
    assert ours == theirs


@pytest.mark.parametrize(
    "tokens",
    [
        [200005, 17196, 200008, 9552, 9552, 1, 200007],  # split UTF-8 then an invalid byte
        [200005, 17196, 200008, 9552, 200007],  # a sequence cut at the stop token
        [200005, 17196, 200008, 64, 201089, 65, 200007],  # an unknown id inside content
        [200005, 17196, 201089, 200008, 64, 200007],  # an unknown id inside the header
        [200005, 17196, 9552, 200008, 64, 200007],  # a header that is not UTF-8
        [200005, 17196, 200008, 9552, 200006, 200007],
    ],
)
def test_byte_level_edge_cases(parse_both, tokens):
    ours, theirs = parse_both(tokens, Role.ASSISTANT)
    assert ours == theirs


@pytest.mark.parametrize("text", COMPLETIONS)
def test_streaming_getters_agree_after_every_token(enc, stream_both, text):
    stream_both(tokens_of(enc, text), Role.ASSISTANT)


@pytest.mark.parametrize("text", COMPLETIONS_FROM_START)
def test_streaming_getters_agree_from_start(enc, stream_both, text):
    stream_both(tokens_of(enc, text), None)


def test_streaming_utf8_split(enc, stream_both):
    tokens = [200005, 17196, 200008, *enc.tokenizer.encode_ordinary("🙂 naïve 日本"), 9552, 200007]
    stream_both(tokens, Role.ASSISTANT)
    parser = StreamableParser(enc, Role.ASSISTANT, strict=True)
    assert parser.state is StreamState.HEADER

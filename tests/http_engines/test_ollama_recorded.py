"""Ollama's engine against recorded /api/tags and raw /api/generate exchanges (NDJSON)."""

from __future__ import annotations

import pytest
from recorded import ENCODING, ids, ollama_server, ollama_stream

from ossa.agent.engines import EngineError
from ossa.agent.engines.http import OllamaEngine

STOP = ENCODING.stop_tokens_for_assistant_actions()
PROMPT = ids("<|start|>user<|message|>hi<|end|><|start|>assistant")


def test_raw_text_in_token_ids_out_and_the_prompt_eval_count_as_usage(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu:11434")
    stream = ollama_stream(["<|channel|>final<|mess", "age|>Hi", " there"], prompt_eval_count=4)
    recording = ollama_server([stream])
    llm = OllamaEngine.open("gpt-oss:20b?num_ctx=16384", transport=recording.transport())
    assert llm.server.base_url == "http://gpu:11434" and llm.context_length == 16384
    generation = llm.generate(PROMPT, stop=STOP, max_tokens=64, temperature=0.5, seed=1)
    assert list(generation) == ids("<|channel|>final<|message|>Hi there<|return|>")
    usage = generation.usage
    assert (usage.prefilled_tokens, usage.reused_tokens) == (4, len(PROMPT) - 4)
    assert (usage.prefill_s, usage.decode_s) == (0.002, 0.03)
    sent = recording.sent("/api/generate")[-1]
    assert sent["raw"] is True and sent["prompt"] == ENCODING.decode(PROMPT)
    assert sent["options"] == {
        "num_predict": 64,
        "num_ctx": 16384,
        "temperature": 0.5,
        "top_p": 1.0,
        "stop": ["<|return|>", "<|call|>"],
        "seed": 1,
    }


def test_the_host_can_be_named_in_the_spec_and_defaults_to_localhost(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    recording = ollama_server([])
    assert OllamaEngine.open("gpt-oss:20b", transport=recording.transport()).server.base_url == (
        "http://127.0.0.1:11434"
    )
    named = OllamaEngine.open("gpt-oss:20b@gpu:1234", transport=recording.transport())
    assert named.server.base_url == "http://gpu:1234"


def test_a_missing_model_and_a_foreign_tokenizer_are_errors_on_connect():
    recording = ollama_server([])
    with pytest.raises(EngineError, match=r"no model 'gpt-oss:120b'.*ollama pull gpt-oss:120b"):
        OllamaEngine.open("gpt-oss:120b", transport=recording.transport())
    foreign = ollama_server([], counts=lambda tokens: len(tokens) + 12)
    with pytest.raises(EngineError, match="does not tokenize harmony as gpt-oss does"):
        OllamaEngine.open("gpt-oss:20b", transport=foreign.transport())


def test_a_call_stripped_of_its_stop_string_gets_call_back():
    call = "<|channel|>commentary to=functions.get <|constrain|>json<|message|>{}"
    recording = ollama_server([ollama_stream([call], prompt_eval_count=3)])
    llm = OllamaEngine.open("gpt-oss:20b@127.0.0.1:1", transport=recording.transport())
    assert list(llm.generate(PROMPT, stop=STOP, max_tokens=64)) == ids(call + "<|call|>")


def test_ollamas_length_stop_below_our_limit_is_an_error():
    recording = ollama_server(
        [ollama_stream(["<|channel|>final"], prompt_eval_count=3, done_reason="length")]
    )
    llm = OllamaEngine.open("gpt-oss:20b@127.0.0.1:1", transport=recording.transport())
    with pytest.raises(EngineError, match="own length limit"):
        list(llm.generate(PROMPT, stop=STOP, max_tokens=64))

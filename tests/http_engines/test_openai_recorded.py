"""vLLM, SGLang and generic OpenAI servers against recorded /v1/completions exchanges.

The recordings follow vLLM's documented streaming chunks (``token_ids`` with
``return_token_ids``, ``stop_reason``, a final usage chunk with ``prompt_tokens_details``,
then ``[DONE]``); SGLang and generic servers send text only.
"""

from __future__ import annotations

import httpx
import pytest
from recorded import ENCODING, ids, openai_server, openai_stream

from ossa.agent.engines import EngineError, open_engine
from ossa.agent.engines.http import OpenAIEngine, open_vllm
from ossa.agent.engines.http.client import Server
from ossa.agent.engines.http.probe import PROBE, probe_tokens

STOP = ENCODING.stop_tokens_for_assistant_actions()
CALL = '<|channel|>commentary to=functions.lookup <|constrain|>json<|message|>{"q": "x"}'
PROMPT = ids("<|start|>user<|message|>look it up<|end|><|start|>assistant")


def engine(recording, flavor: str, model: str | None = None) -> OpenAIEngine:
    return OpenAIEngine(Server("http://gpu:8000", transport=recording.transport()), flavor, model)


def test_vllm_streams_the_servers_token_ids_and_its_cached_count():
    # vLLM does not put a stop token id into the text; stop_reason names it
    stream = openai_stream(
        [
            "<|channel|>commentary",
            " to=functions.lookup <|constrain|>json",
            '<|message|>{"q": "x"}',
        ],
        with_ids=True,
        stop_reason=200012,
        prompt_tokens=len(PROMPT),
        cached=8,
    )
    recording = openai_server(stream, max_model_len=65536)
    llm = engine(recording, "vllm")
    assert (llm.model, llm.context_length) == ("openai/gpt-oss-20b", 65536)
    generation = llm.generate(PROMPT, stop=STOP, max_tokens=100, top_p=0.9, seed=3)
    assert list(generation) == ids(CALL + "<|call|>")
    assert (generation.usage.reused_tokens, generation.usage.prefilled_tokens) == (
        8,
        len(PROMPT) - 8,
    )
    (sent,) = recording.sent("/v1/completions")
    assert sent["prompt"] == PROMPT
    assert sent["stop_token_ids"] == list(STOP)
    assert sent["skip_special_tokens"] is False and sent["return_token_ids"] is True
    assert (sent["seed"], sent["top_p"], sent["max_tokens"]) == (3, 0.9, 100)
    assert sent["stream_options"] == {"include_usage": True}


def test_vllm_eos_with_no_stop_reason_is_the_return_token():
    stream = openai_stream(["<|channel|>final<|message|>", "Done."], with_ids=True)
    llm = engine(openai_server(stream), "vllm")
    assert list(llm.generate(PROMPT, stop=STOP, max_tokens=100)) == ids(
        "<|channel|>final<|message|>Done.<|return|>"
    )


def test_sglang_text_is_tokenized_by_ossa_exactly():
    text = "<|channel|>analysis<|message|>Grüße from 数字 12345!<|end|><|start|>assistant<|channel|>final<|message|>ok"
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]  # cuts inside words and tokens
    recording = openai_server(openai_stream(pieces, with_ids=False, stop_reason=200002))
    llm = engine(recording, "sglang")
    assert list(llm.generate(PROMPT, stop=STOP, max_tokens=100)) == ids(text + "<|return|>")
    (sent,) = recording.sent("/v1/completions")
    assert "return_token_ids" not in sent and sent["skip_special_tokens"] is False


def test_a_generic_server_gets_stop_strings_and_the_call_is_restored():
    recording = openai_server(openai_stream([CALL], with_ids=False))
    recording.routes.pop(("POST", "/tokenize"))  # a generic server has none: the probe counts
    recording.routes[("POST", "/v1/completions")] = [
        _probe_answer(),
        openai_stream([CALL], with_ids=False),
    ]
    llm = engine(recording, "openai")
    assert list(llm.generate(PROMPT, stop=STOP, max_tokens=100)) == ids(CALL + "<|call|>")
    sent = recording.sent("/v1/completions")[-1]
    assert sent["stop"] == ["<|return|>", "<|call|>"]
    assert "stop_token_ids" not in sent and "skip_special_tokens" not in sent


def test_a_server_that_counts_the_probe_differently_is_refused():
    recording = openai_server([])
    recording.routes.pop(("POST", "/tokenize"))
    recording.routes[("POST", "/v1/completions")] = _probe_answer(extra=9)
    with pytest.raises(EngineError, match=r"the probe is \d+ tokens there and \d+ in ossa"):
        engine(recording, "openai")


def test_the_model_is_picked_or_named():
    several = openai_server([], models=("llama-3", "openai/gpt-oss-120b"))
    assert engine(several, "vllm").model == "openai/gpt-oss-120b"
    ambiguous = openai_server([], models=("a", "b"))
    with pytest.raises(EngineError, match=r"serves several models \['a', 'b'\]: name one"):
        engine(ambiguous, "vllm")
    with pytest.raises(EngineError, match="does not serve 'c'"):
        engine(ambiguous, "vllm", "c")


def test_specs_reach_the_right_engine_with_the_api_key(monkeypatch):
    monkeypatch.setenv("OSSA_API_KEY", "from-settings")
    recording = openai_server([], models=("a", "openai/gpt-oss-20b"))
    picked = open_vllm("http://gpu:8000#a", transport=recording.transport())
    assert picked.model == "a"
    assert all(h["authorization"] == "Bearer from-settings" for *_, h in recording.requests)
    with pytest.raises(EngineError, match=r"name the server, like vllm:http://"):
        open_engine("vllm:")


def _probe_answer(extra: int = 0) -> httpx.Response:
    usage = {"prompt_tokens": len(probe_tokens()) + extra, "completion_tokens": 1}
    return httpx.Response(200, json={"choices": [{"text": "x", "index": 0}], "usage": usage})


def test_a_server_without_tokenize_is_probed_by_a_completion_instead():
    recording = openai_server([])
    recording.routes.pop(("POST", "/tokenize"))  # answered 404 by the recording
    recording.routes[("POST", "/v1/completions")] = _probe_answer()
    assert engine(recording, "sglang").model == "openai/gpt-oss-20b"
    (probe,) = recording.sent("/v1/completions")
    assert probe["prompt"] == PROBE and probe["max_tokens"] == 1

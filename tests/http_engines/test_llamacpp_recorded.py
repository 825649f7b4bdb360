"""llama.cpp's engine against recorded /props, /tokenize and /completion exchanges."""

from __future__ import annotations

import httpx
import pytest
from recorded import ENCODING, Body, Recording, ids, llamacpp, llamacpp_stream, sse

from ossa.agent.engines import EngineError
from ossa.agent.engines.http import LlamaCppEngine
from ossa.agent.engines.http.client import Server

STOP = ENCODING.stop_tokens_for_assistant_actions()
ANSWER = "<|channel|>final<|message|>Hello there.<|return|>"


def engine(recording: Recording, **server) -> LlamaCppEngine:
    server.setdefault("backoff", 0.0)
    return LlamaCppEngine(Server("http://llama", transport=recording.transport(), **server))


def test_streams_token_ids_and_reports_the_servers_cache_as_reuse():
    recording = llamacpp(llamacpp_stream(ANSWER, prompt_n=4, cache_n=6))
    llm = engine(recording)
    assert llm.context_length == 4096
    prompt = ids("<|start|>user<|message|>hi<|end|><|start|>assistant")
    generation = llm.generate(prompt, stop=STOP, max_tokens=50, temperature=0.7, seed=7)
    assert list(generation) == ids(ANSWER)
    usage = generation.usage
    assert (usage.reused_tokens, usage.prefilled_tokens) == (6, 4)
    assert usage.generated_tokens == len(ids(ANSWER))
    assert (usage.prefill_s, usage.decode_s) == (0.0125, 0.04)
    (sent,) = recording.sent("/completion")
    assert sent["prompt"] == prompt  # token ids, not text: no re-tokenizing on the server
    assert sent | {"prompt": None} == {
        "prompt": None,
        "n_predict": 50,
        "temperature": 0.7,
        "top_p": 1.0,
        "seed": 7,
        "stream": True,
        "cache_prompt": True,
        "return_tokens": True,
    }


def test_a_server_that_tokenizes_harmony_differently_is_refused_on_connect():
    def plain(text: str) -> list[int]:  # special tokens split as text: not a gpt-oss vocab
        return ENCODING.encode(text.replace("<|", "< |"), allowed_special="all")

    with pytest.raises(EngineError, match=r"does not tokenize harmony as gpt-oss does.*<\|start"):
        engine(llamacpp([], vocab=plain))


def test_connection_refused_is_one_clear_error_after_retries():
    refused = Recording({("GET", "/props"): httpx.ConnectError("[Errno 111] Connection refused")})
    with pytest.raises(
        EngineError, match=r"cannot connect to http://llama .*is the server running"
    ):
        engine(refused, retries=2)
    assert len(refused.requests) == 3


def test_a_real_closed_port_is_the_same_clear_error():
    with pytest.raises(EngineError, match="cannot connect to http://127.0.0.1:9"):
        LlamaCppEngine(Server("http://127.0.0.1:9", retries=0))


def test_http_errors_carry_the_servers_message():
    failing = llamacpp(
        httpx.Response(
            400,
            json={"error": {"code": 400, "message": "the request exceeds the context size"}},
        )
    )
    generation = engine(failing).generate([1, 2], stop=STOP, max_tokens=5)
    with pytest.raises(EngineError, match=r"HTTP 400: the request exceeds the context size"):
        next(generation)


def test_transient_errors_before_the_first_token_are_retried():
    flaky = llamacpp(
        [
            httpx.Response(503, json={"error": {"message": "Loading model"}}),
            httpx.ConnectError("connection reset"),
            llamacpp_stream(ANSWER),
        ]
    )
    assert list(engine(flaky).generate([1], stop=STOP, max_tokens=50)) == ids(ANSWER)
    assert len(flaky.sent("/completion")) == 3


def test_retries_run_out_with_the_last_servers_message():
    busy = llamacpp(httpx.Response(503, json={"error": {"message": "Loading model"}}))
    with pytest.raises(EngineError, match="HTTP 503: Loading model"):
        list(engine(busy, retries=1).generate([1], stop=STOP, max_tokens=5))
    assert len(busy.sent("/completion")) == 2


def test_a_stream_cut_mid_way_is_an_error_and_never_retried():
    cut = llamacpp([llamacpp_stream(ANSWER, cut_after=3), llamacpp_stream(ANSWER)])
    generation = engine(cut).generate([1], stop=STOP, max_tokens=50)
    got = []
    with pytest.raises(EngineError, match="cut mid-way"):
        for token in generation:
            got.append(token)
    assert got == ids(ANSWER)[:3]
    assert len(cut.sent("/completion")) == 1


def test_a_stream_that_ends_without_its_final_event_is_an_error():
    tokens = ids(ANSWER)[:2]
    events = [{"content": "", "tokens": [t], "stop": False} for t in tokens]
    truncated = llamacpp(Body(sse(events)))
    with pytest.raises(EngineError, match="cut before the completion ended"):
        list(engine(truncated).generate([1], stop=STOP, max_tokens=50))


def test_the_servers_own_length_limit_is_an_error_but_ours_is_not():
    text = "<|channel|>final<|message|>Hello there"
    limited = llamacpp(llamacpp_stream(text, stop_type="limit"))
    with pytest.raises(EngineError, match="stopped at its own length limit after"):
        list(engine(limited).generate([1], stop=STOP, max_tokens=50))
    ours = llamacpp(llamacpp_stream(text, stop_type="limit"))
    assert list(engine(ours).generate([1], stop=STOP, max_tokens=len(ids(text)))) == ids(text)


def test_a_timeout_is_one_clear_error():
    slow = llamacpp(httpx.ReadTimeout("timed out"))
    with pytest.raises(EngineError, match="did not answer in time"):
        list(engine(slow).generate([1], stop=STOP, max_tokens=5))


def test_an_error_event_in_the_stream_is_reported():
    failing = llamacpp(Body(sse([{"error": {"code": 500, "message": "slot crashed"}}])))
    with pytest.raises(EngineError, match="slot crashed"):
        list(engine(failing).generate([1], stop=STOP, max_tokens=5))


def test_closing_the_generation_closes_the_stream():
    recording = llamacpp(llamacpp_stream(ANSWER))
    generation = engine(recording).generate([1], stop=STOP, max_tokens=50)
    next(generation)
    generation.close()
    (body,) = recording.bodies
    assert body.closed and body.sent < len(body.chunks)


def test_the_api_key_is_sent_as_a_bearer_token(monkeypatch):
    monkeypatch.setenv("OSSA_LLAMACPP_API_KEY", "sekrit")
    recording = llamacpp(llamacpp_stream(ANSWER))
    LlamaCppEngine.open("http://llama", transport=recording.transport())
    assert all(h["authorization"] == "Bearer sekrit" for *_, h in recording.requests)


def test_the_api_key_can_come_from_the_config_file_and_is_never_shown(tmp_path, monkeypatch):
    from ossa.agent.settings import load_config, to_toml

    config = tmp_path / "config.toml"
    config.write_text('api_key = "from-config"\n')
    monkeypatch.setenv("OSSA_CONFIG", str(config))
    monkeypatch.delenv("OSSA_API_KEY", raising=False)
    monkeypatch.delenv("OSSA_LLAMACPP_API_KEY", raising=False)
    recording = llamacpp(llamacpp_stream(ANSWER))
    LlamaCppEngine.open("http://llama", transport=recording.transport())
    assert all(h["authorization"] == "Bearer from-config" for *_, h in recording.requests)
    shown = to_toml(load_config())
    assert "from-config" not in shown and "# api_key =   (set, not shown)" in shown

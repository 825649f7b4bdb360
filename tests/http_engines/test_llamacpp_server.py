"""A real llama.cpp server (built by scripts/build-llama-server.sh) serving ossa's tiny model.

The tiny random checkpoint writes nonsense, which suits these checks: they are about what
crosses the wire (the exact tokens, the cache counts, the failure when the server dies), not
about what the model says.
"""

from __future__ import annotations

import json

import httpx
import pytest
from llama_server import LlamaServer

from ossa.agent.engines import EngineError
from ossa.agent.engines.http import LlamaCppEngine
from ossa.agent.engines.http.client import Server
from ossa.agent.events import Usage
from ossa.agent.loop import Agent
from ossa.agent.settings import Settings
from ossa.harmony import load_harmony_encoding

pytestmark = pytest.mark.llamacpp
ENCODING = load_harmony_encoding()
STOP = ENCODING.stop_tokens_for_assistant_actions()


class Tee(httpx.HTTPTransport):
    """The real transport, keeping each /completion request and its final streamed event."""

    def __init__(self, on_first_chunk=None) -> None:
        super().__init__()
        self.requests: list[dict] = []
        self.finals: list[dict] = []
        self.on_first_chunk = on_first_chunk

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/completion":
            self.requests.append(json.loads(request.content))
            response.stream = _Kept(response.stream, self.finals, self.on_first_chunk)
        return response


class _Kept(httpx.SyncByteStream):
    def __init__(self, inner, finals: list[dict], on_first_chunk=None) -> None:
        self.inner, self.finals, self.data = inner, finals, b""
        self.on_first_chunk = on_first_chunk

    def __iter__(self):
        for chunk in self.inner:
            if not self.data and self.on_first_chunk:
                self.on_first_chunk()
            self.data += chunk
            yield chunk

    def close(self) -> None:
        self.inner.close()
        for line in self.data.decode().splitlines():
            if line.startswith("data:") and '"stop":true' in line.replace(" ", ""):
                self.finals.append(json.loads(line[5:]))


@pytest.fixture(scope="module")
def server(llama_cpp, tiny_gguf, tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(llama_cpp, tiny_gguf, parallel=1, ctx=4096, log=log) as running:
        yield running


def engine(url: str, tee: httpx.BaseTransport | None = None) -> LlamaCppEngine:
    return LlamaCppEngine(Server(url, transport=tee, backoff=0.05))


def test_connect_checks_pass_and_the_context_is_one_slots(server):
    llm = LlamaCppEngine.open(server.url)
    assert llm.context_length == 4096
    assert httpx.post(f"{server.url}/tokenize", json={"content": "<|call|>"}).json()["tokens"] == [
        200012
    ]


def test_agent_steps_reach_the_server_token_for_token_and_reuse_its_cache(server):
    tee = Tee()
    agent = Agent(engine(server.url, tee), None, Settings(tools=[], max_tokens=12))
    usages = []
    for question in ("What is 2+2?", "And 3+3?"):
        events = list(agent.run(question))
        usages += [e for e in events if isinstance(e, Usage)]
    assert len(tee.requests) == len(tee.finals) == 2
    for request, final in zip(tee.requests, tee.finals, strict=True):
        # what the server evaluated is ossa's rendering, token for token
        assert final["tokens_evaluated"] == len(request["prompt"])
        assert final["prompt"] == ENCODING.decode(request["prompt"])
        again = httpx.post(
            f"{server.url}/tokenize", json={"content": final["prompt"], "parse_special": True}
        )
        assert again.json()["tokens"] == request["prompt"]
    first, second = (r["prompt"] for r in tee.requests)
    assert second[: len(first)] == first  # the second step extends the first exactly
    # ossa's usage is the server's cache. llama.cpp keeps gpt-oss's sliding-window layers in
    # a window-sized cache and resumes from a checkpoint it took a few tokens before the end
    # of the last prompt, so it reuses most of the first prompt, not all of it.
    cached = tee.finals[1]["timings"]["cache_n"]
    assert usages[1].reused_tokens == cached
    assert len(first) // 2 < cached <= len(first)
    assert usages[1].prompt_tokens == len(second)


def test_greedy_output_through_ossa_equals_a_direct_request(server):
    prompt = ENCODING.encode(
        "<|start|>user<|message|>greedy check 7319<|end|><|start|>assistant",
        allowed_special="all",
    )
    through_ossa = list(engine(server.url).generate(prompt, stop=STOP, max_tokens=24))
    direct = httpx.post(
        f"{server.url}/completion",
        json={"prompt": prompt, "n_predict": 24, "temperature": 0, "cache_prompt": False,
              "return_tokens": True},
        timeout=120,
    ).json()  # fmt: skip
    assert through_ossa == direct["tokens"]
    assert len(through_ossa) > 0


def test_killing_the_server_mid_stream_is_the_clean_error(llama_cpp, tiny_gguf, tmp_path):
    with LlamaServer(llama_cpp, tiny_gguf, log=tmp_path / "server.log") as doomed:
        llm = engine(doomed.url)
        prompt = ENCODING.encode(
            "<|start|>user<|message|>go on<|end|><|start|>assistant", allowed_special="all"
        )
        generation = llm.generate(prompt, stop=[], max_tokens=4000)
        next(generation)
        doomed.stop()
        with pytest.raises(EngineError, match=r"cut (mid-way|before the completion ended)"):
            for _ in generation:
                pass
        assert generation.usage.generated_tokens < 4000
        with pytest.raises(EngineError, match="cannot connect to .* is the server running"):
            llm.generate(prompt, stop=STOP, max_tokens=4).__next__()


def test_logits_match_ossas_local_engine_on_the_same_weights(server, tiny_gguf):
    """A third implementation for the numerics: llama.cpp's log-probabilities vs ossa's.

    llama.cpp generates 16 greedy tokens and reports the top-10 log-probabilities at each
    position; ossa's torch engine, teacher-forced on the same tokens from the checkpoint the
    GGUF was converted from, must give the same values within a small tolerance. They are
    not bit-equal: llama.cpp rounds activations to 8 bits in blocks of 32 before its MXFP4
    expert dot products and accumulates in another order, and random weights route tokens
    to experts by near-ties, so a different expert can win at a rare position.
    """
    import torch

    import ossa.model

    prompt = ENCODING.encode(
        "<|start|>user<|message|>compare the numbers<|end|><|start|>assistant",
        allowed_special="all",
    )
    answer = httpx.post(
        f"{server.url}/completion",
        json={"prompt": prompt, "n_predict": 16, "temperature": 0, "n_probs": 10,
              "cache_prompt": False, "return_tokens": True},
        timeout=120,
    ).json()  # fmt: skip
    generated = answer["tokens"]
    local = ossa.model.load(tiny_gguf.parent / "hf", device="cpu")
    logprobs = torch.log_softmax(local.logits(prompt + generated).float(), dim=-1)
    worst, top1_same = 0.0, 0
    for i, position in enumerate(answer["completion_probabilities"]):
        row = logprobs[len(prompt) - 1 + i]
        top = position["top_logprobs"]
        top1_same += int(row.argmax()) == top[0]["id"]
        for candidate in top:
            worst = max(worst, abs(float(row[candidate["id"]]) - candidate["logprob"]))
    print(f"\nllama.cpp vs ossa: top-1 agrees at {top1_same}/16 positions; "
          f"largest top-10 log-prob difference {worst:.4f}")  # fmt: skip
    assert top1_same >= 14
    assert worst < 0.05


def test_closing_a_generation_stops_the_server_generating(server):
    prompt = ENCODING.encode(
        "<|start|>user<|message|>stop me<|end|><|start|>assistant", allowed_special="all"
    )
    generation = engine(server.url).generate(prompt, stop=[], max_tokens=3000)
    next(generation)
    generation.close()
    slot = _idle_slot(server.url)
    assert slot["next_token"][0]["n_decoded"] < 3000  # it stopped when the stream closed


def _idle_slot(url: str) -> dict:
    """The slot once it is idle again (llama.cpp notices a closed connection per token)."""
    import time

    for _ in range(600):
        (slot,) = httpx.get(f"{url}/slots").json()
        if not slot["is_processing"]:
            return slot
        time.sleep(0.05)
    raise AssertionError("the slot kept generating after the stream was closed")


def test_the_generic_openai_engine_works_on_llama_servers_v1_completions(server):
    """The ``openai`` flavor on a real OpenAI-compatible endpoint (llama-server's own).

    It gets text back, so ossa tokenizes it: the text equals the native engine's, but a
    random model samples token sequences that are not BPE's canonical split of their text,
    so the ids may differ (real models almost always write canonical splits).
    """
    from ossa.agent.engines.http import open_openai

    prompt = ENCODING.encode(
        "<|start|>user<|message|>generic flavor<|end|><|start|>assistant", allowed_special="all"
    )
    generic = open_openai(server.url)
    through_text = list(generic.generate(prompt, stop=STOP, max_tokens=16))
    native = list(engine(server.url).generate(prompt, stop=STOP, max_tokens=16))
    assert ENCODING.decode(through_text) == ENCODING.decode(native)


def test_an_agent_turn_whose_server_dies_mid_stream_ends_with_one_clean_error(
    llama_cpp, tiny_gguf, tmp_path
):
    from ossa.agent.events import Error
    from ossa.agent.sessions import SessionStore
    from ossa.harmony import Role

    with LlamaServer(llama_cpp, tiny_gguf, log=tmp_path / "server.log") as doomed:
        tee = Tee(on_first_chunk=doomed.stop)  # the server dies as its first tokens arrive
        session = SessionStore(tmp_path / "sessions").create({"model": doomed.url})
        settings = Settings(tools=[], max_tokens=3000)
        agent = Agent(engine(doomed.url, tee), None, settings, session=session)
        events = list(agent.run("Tell me a long story."))
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and errors[0].kind == "engine"
    assert "EngineError: the stream from" in errors[0].message
    assert events[-1].status == "error"
    assert agent.messages[-1].author.role == Role.USER  # nothing half-written
    assert session.load().messages == agent.messages

import pytest
import torch

import ossa.model
from ossa.errors import OssaError
from ossa.model.engine import ContextLengthError
from tests.model.conftest import random_tokens


def test_layouts_give_identical_logits(tiny_original, tiny_transformers, tiny_engine):
    tokens = random_tokens(140, seed=1)
    other = ossa.model.load(tiny_transformers, dtype=torch.float32)
    assert torch.equal(other.logits(tokens), tiny_engine.logits(tokens))


def test_cached_decoding_equals_a_full_forward(ring_checkpoint):
    engine = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    model = engine.model
    tokens = random_tokens(30, seed=2)
    full = model.forward(torch.tensor(tokens), 0, model.new_cache(64))
    cache = model.new_cache(12)  # 8-token window, 4 spare slots: the ring wraps often
    steps = [model.forward(torch.tensor(tokens[:4]), 0, cache)]
    steps += [model.forward(torch.tensor([t]), 4 + i, cache) for i, t in enumerate(tokens[4:])]
    assert (torch.cat(steps) - full).abs().max() < 1e-4


def test_generate_is_greedy_over_the_logits(tiny_engine):
    prompt = random_tokens(200, seed=3)
    out = list(tiny_engine.generate(prompt, max_tokens=6))
    stats = tiny_engine.stats
    assert len(out) == 6 and stats.generated_tokens == 6
    assert stats.prefilled_tokens + stats.reused_tokens == 200
    logits = tiny_engine.logits(prompt + out[:-1])
    assert logits[len(prompt) - 1 :].argmax(-1).tolist() == out


def test_stop_token_is_yielded_then_generation_ends(tiny_engine):
    prompt = random_tokens(20, seed=4)
    first, second = list(tiny_engine.generate(prompt, max_tokens=2))
    assert list(tiny_engine.generate(prompt, stop={second}, max_tokens=10)) == [first, second]
    assert list(tiny_engine.generate(prompt, max_tokens=0)) == []


def test_prefix_reuse_gives_the_tokens_of_a_fresh_engine(ring_checkpoint):
    def engine() -> ossa.model.Engine:
        return ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)

    agent = engine()
    p1 = random_tokens(25, seed=5)
    g1 = list(agent.generate(p1, max_tokens=5))
    # the next prompt extends the last one and what was generated
    p2 = p1 + g1 + random_tokens(7, seed=6)
    g2 = list(agent.generate(p2, max_tokens=4))
    assert agent.stats.reused_tokens == len(p1) + len(g1) - 1  # the last sample never ran
    assert agent.stats.prefilled_tokens == len(p2) - agent.stats.reused_tokens
    assert g2 == list(engine().generate(p2, max_tokens=4))
    # diverging 3 tokens before the end of the cache: the 12-slot ring still holds every key
    # the 8-token window needs there
    cached = p2 + g2[:-1]
    p3 = cached[:-3] + random_tokens(3, seed=7)
    g3 = list(agent.generate(p3, max_tokens=1))
    assert agent.stats.reused_tokens == len(cached) - 3
    assert g3 == list(engine().generate(p3, max_tokens=1))
    # diverging far back: the ring has overwritten those keys, so everything is re-prefilled
    p4 = p3[:10] + random_tokens(5, seed=8)
    g4 = list(agent.generate(p4, max_tokens=3))
    assert agent.stats.reused_tokens == 0 and agent.stats.prefilled_tokens == len(p4)
    assert g4 == list(engine().generate(p4, max_tokens=3))
    agent.reset()
    assert list(agent.generate(p4, max_tokens=3)) == g4 and agent.stats.reused_tokens == 0


def test_abandoned_generation_keeps_the_cache_consistent(ring_checkpoint):
    agent = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    prompt = random_tokens(15, seed=9)
    stream = agent.generate(prompt, max_tokens=50)
    taken = [next(stream) for _ in range(3)]
    stream.close()
    follow = prompt + taken + [42]
    out = list(agent.generate(follow, max_tokens=3))
    assert agent.stats.reused_tokens == len(prompt) + 2
    fresh = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    assert out == list(fresh.generate(follow, max_tokens=3))


def test_sampling_is_seeded_and_top_p_narrows_it(tiny_engine):
    prompt = random_tokens(30, seed=10)
    a = list(tiny_engine.generate(prompt, max_tokens=5, temperature=1.0, seed=1))
    b = list(tiny_engine.generate(prompt, max_tokens=5, temperature=1.0, seed=1))
    assert a == b
    greedy = list(tiny_engine.generate(prompt, max_tokens=5))
    assert list(tiny_engine.generate(prompt, max_tokens=5, temperature=1.0, top_p=1e-6)) == greedy


def test_bad_calls_get_clear_errors(tiny_engine):
    assert tiny_engine.context_length == 131072
    with pytest.raises(ContextLengthError, match="131072"):
        tiny_engine.generate([1] * 131073, max_tokens=1)
    with pytest.raises(ValueError, match="empty"):
        tiny_engine.logits([])
    with pytest.raises(ValueError, match="201088"):
        tiny_engine.generate([1, 201088], max_tokens=1)
    with pytest.raises(ValueError):
        tiny_engine.generate([1], max_tokens=1, top_p=0)


def test_each_generation_carries_its_own_usage(ring_checkpoint):
    engine = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    prompt = random_tokens(12, seed=12)
    first = engine.generate(prompt, max_tokens=3)
    assert isinstance(first, ossa.model.Generation) and first.usage is engine.stats
    tokens = list(first)
    second = engine.generate(prompt + tokens, max_tokens=2)
    assert engine.stats is second.usage  # the engine's stats are the last call's usage
    assert len(list(second)) == 2
    assert (first.usage.prefilled_tokens, first.usage.generated_tokens) == (12, 3)
    assert second.usage.reused_tokens == 14 and second.usage.prefilled_tokens == 1
    assert second.usage.generated_tokens == 2 and first.usage.reused_tokens == 0
    third = engine.generate(prompt, max_tokens=50)
    next(third)
    third.close()  # stopped early: the usage counts what ran
    assert third.usage.generated_tokens == 1
    with pytest.raises(StopIteration):
        next(third)


def test_devices_resolve_or_are_refused_in_one_line(tiny_original, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ossa.model.resolve_device("auto") == "cpu" == ossa.model.resolve_device("CPU")
    for name, message in [("tpu", "unknown device 'tpu'"), ("cuda", "no CUDA GPU")]:
        with pytest.raises(OssaError, match=message) as caught:
            ossa.model.resolve_device(name)
        assert "\n" not in str(caught.value)
    with pytest.raises(OssaError, match="no CUDA GPU"):
        ossa.model.load(tiny_original, device="cuda:0")
    assert ossa.model.load(tiny_original, device="auto").model.device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ossa.model.resolve_device("auto") == "cuda"


def test_a_bf16_kv_cache_is_half_the_size_and_close(ring_checkpoint):
    """An option, not the default: rounding keys to bf16 moves these logits by ~0.1-1 (the
    fp32 cache matches transformers to ~4e-6), though the top token mostly holds."""
    tokens = random_tokens(40, seed=13)
    exact = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    half = ossa.model.load(
        ring_checkpoint, dtype=torch.float32, prefill_chunk=4, kv_dtype=torch.bfloat16
    )
    assert exact.model.new_cache(16)[0].k.dtype == torch.float32
    assert half.model.new_cache(16)[0].k.dtype == torch.bfloat16
    expected, got = exact.logits(tokens), half.logits(tokens)
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() >= 0.9
    assert (got - expected).abs().max() < 0.2 * expected.abs().max()
    prompt = tokens[:20]
    decoded = list(half.generate(prompt, max_tokens=6))  # the decode path reads bf16 too
    assert len(decoded) == 6


def test_sampling_follows_the_distribution_and_the_nucleus():
    """Frequencies over many draws match softmax(logits / T); top_p keeps exactly the smallest
    head that reaches it, also when that head is larger than the first candidates looked at."""
    from ossa.model.engine import NUCLEUS_FIRST, _sample

    gen = torch.Generator().manual_seed(0)
    logits = torch.full((1000,), -float("inf"))
    logits[[3, 500, 999]] = torch.tensor([0.0, 1.0, 2.0]).log()  # probabilities 0, 1/3, 2/3
    draws = [_sample(logits, 1.0, 1.0, gen) for _ in range(3000)]
    assert set(draws) == {500, 999}
    assert abs(draws.count(999) / 3000 - 2 / 3) < 0.03
    # 1000 equally likely tokens but one: the nucleus of 0.5 is 500 tokens, past the first 64
    flat = torch.zeros(1000)
    flat[7] = 3.0
    p7 = float(torch.softmax(flat, 0)[7])
    nucleus = 1 + round((0.5 - p7) / ((1 - p7) / 999) + 0.5)
    assert nucleus > NUCLEUS_FIRST
    seen = {_sample(flat, 1.0, 0.5, gen) for _ in range(4000)}
    assert 7 in seen and len(seen) <= nucleus and len(seen) > 0.9 * nucleus
    assert _sample(flat, 1.0, 1e-6, gen) == 7  # a nucleus of one: the most likely token

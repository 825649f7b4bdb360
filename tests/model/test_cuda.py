"""The CUDA path against the CPU path on the same random checkpoints.

Skipped where torch sees no GPU (CI here has none); run on a GPU machine with
`python3 -m pytest -q tests/model/test_cuda.py`. On CUDA the dense weights stay bf16 and so do
the activations, so logits are compared at bf16's precision, and greedy tokens must agree.
"""

import pytest
import torch

import ossa.model
from tests.model.conftest import random_tokens

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU"),
]


@pytest.mark.parametrize("fixture", ["tiny_original", "ring_checkpoint"])
def test_logits_match_the_cpu_path(request, fixture):
    path = request.getfixturevalue(fixture)
    tokens = random_tokens(200, seed=21)
    cpu = ossa.model.load(path, dtype=torch.float32, prefill_chunk=64).logits(tokens)
    gpu = ossa.model.load(path, device="cuda", prefill_chunk=64).logits(tokens).cpu()
    assert gpu.shape == cpu.shape
    assert (gpu - cpu).abs().max() < 0.02 * cpu.abs().max()
    assert (gpu.argmax(-1) == cpu.argmax(-1)).float().mean() > 0.95


def test_decoding_and_prefix_reuse_match_the_cpu_path(ring_checkpoint):
    prompt = random_tokens(30, seed=22)
    cpu = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    gpu = ossa.model.load(ring_checkpoint, device="cuda", prefill_chunk=4)
    first = list(gpu.generate(prompt, max_tokens=8))
    assert first == list(cpu.generate(prompt, max_tokens=8))
    follow = prompt + first + random_tokens(6, seed=23)
    generation = gpu.generate(follow, max_tokens=8)
    assert list(generation) == list(cpu.generate(follow, max_tokens=8))
    assert generation.usage.reused_tokens == len(prompt) + len(first) - 1

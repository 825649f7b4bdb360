"""Logits against transformers' GptOssForCausalLM on the same random MXFP4 checkpoint.

transformers reads the transformers-layout files itself and dequantizes the experts with its
own code; ossa reads the original layout written from the same seed, so both the layouts and
the forward pass are under test.
"""

import pytest
import torch

import ossa.model
from ossa.model import kernel
from tests.model.conftest import random_tokens

transformers = pytest.importorskip("transformers")

# each code path the engine can take on a CPU, forced by its environment variable
KERNEL_PATHS = {
    "avx512": {"OSSA_KERNEL_AVX2": "0"},
    "avx2": {"OSSA_KERNEL_AVX2": "1"},
    "torch": {"OSSA_NO_KERNEL": "1"},
}


@pytest.fixture(params=sorted(KERNEL_PATHS))
def kernel_path(request, monkeypatch):
    """Runs a test on the AVX-512 kernels, the AVX2 ones and the torch fallback in turn."""
    if request.param != "torch" and not kernel.available():
        pytest.skip(f"no kernels here: {kernel.unavailable_reason()}")
    for name, value in KERNEL_PATHS[request.param].items():
        monkeypatch.setenv(name, value)
    if request.param == "avx512" and not kernel.avx512():
        pytest.skip("this CPU lacks AVX-512")
    return request.param


@pytest.mark.parametrize(
    ("ours", "theirs", "length", "chunk"),
    [
        ("tiny_original", "tiny_transformers", 300, 512),  # past the 128-token window
        ("ring_checkpoint", "ring_transformers", 40, 4),  # 8-token window, ring wraps many times
    ],
)
def test_logits_match_transformers(request, ours, theirs, length, chunk, kernel_path):
    hf = transformers.GptOssForCausalLM.from_pretrained(
        request.getfixturevalue(theirs), dtype=torch.float32
    ).eval()
    engine = ossa.model.load(
        request.getfixturevalue(ours), dtype=torch.float32, prefill_chunk=chunk
    )
    tokens = random_tokens(length, seed=7)
    with torch.no_grad():
        expected = hf(torch.tensor([tokens])).logits[0].float()
    got = engine.logits(tokens)
    diff = (got - expected).abs().max().item()
    print(f"max |ossa - transformers| over {length} tokens ({kernel_path}): {diff:.3g}")
    assert got.shape == expected.shape == (length, 201088)
    assert diff < 1e-3


def test_default_bf16_weights_give_the_same_prefill(tiny_original, tiny_engine):
    # bf16 weights are exact copies of the checkpoint; prefill upcasts them to fp32
    tokens = random_tokens(150, seed=8)
    bf16 = ossa.model.load(tiny_original)
    assert (bf16.logits(tokens) - tiny_engine.logits(tokens)).abs().max() < 1e-4

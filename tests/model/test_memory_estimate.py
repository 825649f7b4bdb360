"""The memory estimate's KV cache is the bytes real `LayerCache`s hold, in either KV dtype."""

from __future__ import annotations

import json

import pytest
import torch

from ossa.model.cache import LayerCache
from ossa.model.config import Config, preset
from ossa.model.memory import kv_bytes
from tests.model.conftest import RING, invoke
from tests.model.test_cli import GPT_OSS_20B


def filled(cfg: Config, n: int, *, dtype: torch.dtype, prefill_chunk: int) -> list[LayerCache]:
    """Layer caches made as `Model.new_cache` makes them, with `n` positions written from
    scratch in chunks of `prefill_chunk`, as `Engine` prefills a prompt."""
    caches = [
        LayerCache(
            cfg.num_key_value_heads,
            cfg.head_dim,
            window=cfg.sliding_window if cfg.is_sliding(layer) else None,
            ring_slots=cfg.sliding_window + prefill_chunk,
            dtype=dtype,
            device=torch.device("cpu"),
        )
        for layer in range(cfg.num_hidden_layers)
    ]
    for start in range(0, n, prefill_chunk):
        k = torch.randn(min(prefill_chunk, n - start), cfg.num_key_value_heads, cfg.head_dim)
        for cache in caches:
            cache.write(k, k, start)
    return caches


# contexts on both sides of the first growths (256 slots first), and a chunk longer than the
# growth step, whose first write takes exactly what it needs: growth is counted, not avoided
@pytest.mark.parametrize("prefill_chunk", [512, 100, 600])
@pytest.mark.parametrize("n", [1, 256, 257, 513, 1000, 2048, 2049])
@pytest.mark.parametrize(("dtype", "itemsize"), [(torch.bfloat16, 2), (torch.float32, 4)])
def test_kv_bytes_is_what_the_layer_caches_hold(n, prefill_chunk, dtype, itemsize):
    assert any(RING.is_sliding(layer) for layer in range(RING.num_hidden_layers))
    assert not all(RING.is_sliding(layer) for layer in range(RING.num_hidden_layers))
    caches = filled(RING, n, dtype=dtype, prefill_chunk=prefill_chunk)
    held = sum(t.nbytes for c in caches for t in (c.k, c.v, c.pos))
    assert kv_bytes(RING, n, kv_itemsize=itemsize, prefill_chunk=prefill_chunk) == held


def test_model_info_estimates_the_kv_cache_in_the_dtype_asked_for(tmp_path):
    (tmp_path / "original").mkdir()
    (tmp_path / "original" / "config.json").write_text(GPT_OSS_20B)
    kv = {}
    for kv_dtype in ("bf16", "fp32"):
        args = ["--device", "cpu", "--context", "8192", "--kv-dtype", kv_dtype, "--json"]
        result = invoke("info", str(tmp_path), *args)
        assert result.exit_code == 0, result.output
        memory = json.loads(result.output)["memory"]
        assert memory["kv_dtype"] == kv_dtype
        kv[kv_dtype] = memory["kv_cache"]
    # 12 full layers of 8192 + 1 slots and 12 rings of 128 + 512 + 1, each slot 8 kv heads x
    # (65 key + 64 value) elements and an int64 position
    assert kv["bf16"] == 12 * (8961 + 641) * (8 * 129 * 2 + 8) == 238_744_128  # 8960 slots
    assert kv["fp32"] == 12 * (8961 + 641) * (8 * 129 * 4 + 8)
    assert kv_bytes(preset("gpt-oss-20b"), 8192, kv_itemsize=2) == kv["bf16"]
    default = json.loads(invoke("info", str(tmp_path), "--device", "cpu", "--json").output)
    assert default["memory"]["kv_cache"] == kv["bf16"]  # bf16, as the agent runs it
    table = invoke("info", str(tmp_path), "--context", "8192").output
    assert "KV cache at 8192 tokens in bf16 0.22 +" in " ".join(table.replace("│", " ").split())


def test_a_bad_kv_dtype_is_one_line(tmp_path):
    result = invoke("info", str(tmp_path), "--kv-dtype", "fp16")
    assert result.exit_code == 2
    assert result.output == "error: --kv-dtype must be bf16 or fp32, not 'fp16'\n"

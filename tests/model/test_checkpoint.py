import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from ossa.model import checkpoint, synth
from ossa.model.checkpoint import CheckpointError
from ossa.model.config import Config, preset


def test_config_round_trips_through_both_layouts():
    for name in ("tiny", "gpt-oss-20b", "gpt-oss-120b"):
        cfg = preset(name)
        assert Config.from_original(cfg.to_original()) == cfg
        assert Config.from_transformers(cfg.to_transformers()) == cfg


def test_parameter_counts_match_the_published_models():
    assert sum(preset("gpt-oss-20b").parameter_counts().values()) == 20_914_757_184
    assert preset("gpt-oss-20b").parameter_counts()["mxfp4"] == 19_110_297_600
    assert sum(preset("gpt-oss-120b").parameter_counts().values()) == 116_829_156_672


def test_unknown_original_keys_and_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="unknown keys"):
        Config.from_original({"num_hidden_layers": 2, "bogus": 1})
    with pytest.raises(ValueError, match="multiples of 32"):
        Config(hidden_size=100)


def test_written_files_are_standard_safetensors_read_zero_copy(tiny_original):
    folder = tiny_original / "original"
    assert (
        json.loads((folder / "dtypes.json").read_text())["block.0.mlp.mlp1_weight.blocks"] == "FP4"
    )
    ours = checkpoint.read_safetensors(folder / "model.safetensors")
    with safe_open(folder / "model.safetensors", framework="pt") as f:
        assert set(f.keys()) == set(ours)
        for name in ("embedding.weight", "block.1.mlp.mlp2_weight.scales", "block.0.attn.sinks"):
            assert torch.equal(f.get_tensor(name), ours[name])
    assert ours["block.0.mlp.mlp1_weight.blocks"].dtype == torch.uint8


def test_original_subfolder_and_layout_are_found(tiny_original, tiny_transformers):
    assert checkpoint.find(tiny_original) == ("original", tiny_original / "original")
    assert checkpoint.find(tiny_transformers) == ("transformers", tiny_transformers)


def test_sharded_transformers_checkpoint_loads_like_the_original(
    tmp_path, monkeypatch, tiny_original
):
    monkeypatch.setattr(synth, "SHARD_BYTES", 20_000_000)
    synth.write_checkpoint(tmp_path, "tiny", layout="transformers")
    shards = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    sharded, original = checkpoint.load(tmp_path), checkpoint.load(tiny_original)
    assert sharded.tensors.keys() == original.tensors.keys()
    assert all(torch.equal(sharded.tensors[k], original.tensors[k]) for k in original.tensors)


def test_broken_checkpoints_get_clear_errors(tmp_path, tiny_original):
    with pytest.raises(CheckpointError, match="no config.json"):
        checkpoint.load(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_original, broken)
    data = broken / "original" / "model.safetensors"
    data.write_bytes(data.read_bytes()[:1_000_000])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load(broken)
    cfg = json.loads((broken / "original" / "config.json").read_text())
    (broken / "original" / "config.json").write_text(json.dumps(cfg | {"num_hidden_layers": 3}))
    shutil.copy(tiny_original / "original" / "model.safetensors", data)
    with pytest.raises(CheckpointError, match="missing"):
        checkpoint.load(broken)


def _resident_file_bytes() -> int:
    lines = Path("/proc/self/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines)
    return int(status["RssFile"].split()[0]) * 1024


def test_released_tensors_leave_the_resident_set_and_still_read_the_same(tmp_path):
    """What the transformers layout's q/k/v get once copied into the fused qkv."""
    from safetensors.torch import save_file

    path = tmp_path / "big.safetensors"
    save_file({"w": torch.arange(16 << 20, dtype=torch.float32)}, str(path))  # 64 MiB
    w = checkpoint.read_safetensors(path)["w"]
    before = _resident_file_bytes()
    total = float(w.sum())  # every page touched: mapped into this process
    assert _resident_file_bytes() - before > 48 << 20
    checkpoint._release(w)
    assert _resident_file_bytes() - before < 8 << 20
    assert float(w.sum()) == total  # read back from the file


def test_decode_weights_move_to_huge_pages_and_copies_stay_put(tiny_original, tiny_transformers):
    ckpt = checkpoint.load(tiny_original)
    before = ckpt.tensors["unembedding.weight"].clone()
    moved = ckpt.in_huge_pages("unembedding.weight")
    assert moved.data_ptr() % (2 << 20) == 0 and torch.equal(moved, before)
    assert "unembedding.weight" in ckpt.mapped
    hf = checkpoint.load(tiny_transformers)
    fused = hf.tensors["block.0.attn.qkv.weight"]  # made by concatenation: not a mapping
    assert "block.0.attn.qkv.weight" not in hf.mapped
    assert hf.in_huge_pages("block.0.attn.qkv.weight") is fused


def test_huge_page_copies_are_packed_not_a_page_each(tiny_original):
    """Small weights (a router's is 184 KB in gpt-oss-20b) share huge pages: each copy starts
    on the next 64-byte boundary after the one before, and keeps its values."""
    ckpt = checkpoint.load(tiny_original)
    names = ["block.0.mlp.gate.weight", "block.0.attn.out.weight", "block.1.mlp.gate.weight"]
    originals = [ckpt.tensors[n].clone() for n in names]
    moved = [ckpt.in_huge_pages(n) for n in names]
    for a, b in zip(moved, moved[1:], strict=False):
        nbytes = a.numel() * a.element_size()
        assert b.data_ptr() == a.data_ptr() + -(-nbytes // 64) * 64
    assert all(torch.equal(m, o) for m, o in zip(moved, originals, strict=True))

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ossa.model.config import preset
from tests.model.conftest import cache_repo, invoke


def test_info_shows_config_counts_bytes_and_memory(tiny_transformers):
    result = invoke("info", str(tiny_transformers))
    assert result.exit_code == 0, result.output
    assert "transformers layout" in result.output
    assert "25,965,272" in result.output  # parameters of the tiny preset
    assert "bytes uint8" in result.output and "memory on" in result.output


def test_missing_sources_fail_cleanly(hf_home):
    result = invoke("info", "nobody/no-such-model")
    assert result.exit_code == 1 and "ossa model pull" in result.output
    result = invoke("pull", "nobody/no-such-model")
    assert result.exit_code == 1 and "not in the local Hugging Face cache" in result.output


GPT_OSS_20B = json.dumps(preset("gpt-oss-20b").to_original())


def test_info_needs_only_the_config_of_a_local_directory(tmp_path):
    (tmp_path / "original").mkdir()
    (tmp_path / "original" / "config.json").write_text(GPT_OSS_20B)
    result = invoke("info", str(tmp_path), "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["layout"] == "original" and not facts["downloaded"]
    assert facts["parameters"] == 20_914_757_184
    mem = facts["memory"]
    # the published 20b checkpoint is 13.76 GB: the estimate's weights are its stored bytes
    assert 13.7e9 < mem["weights"] < 13.8e9
    assert mem["total"] == mem["weights"] + mem["kv_cache"] + mem["expert_cache"]
    table = invoke("info", str(tmp_path), "--context", "1024")
    assert "not downloaded" in table.output and "KV cache at 1024 tokens" in table.output


def test_info_answers_from_the_hf_cache_before_the_weights_are_there(hf_home):
    cache_repo(hf_home, "openai/gpt-oss-20b", {"original/config.json": GPT_OSS_20B})
    result = invoke("info", "openai/gpt-oss-20b", "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["parameters"] == 20_914_757_184 and not facts["downloaded"]
    assert facts["memory"]["device"] == "cpu"  # auto, on a machine whose torch sees no GPU


def test_list_and_rm_cached_checkpoints(hf_home, tiny_original):
    weights = (tiny_original / "original" / "model.safetensors").read_bytes()
    snapshot = cache_repo(hf_home, "openai/gpt-oss-20b", {"original/config.json": GPT_OSS_20B})
    tiny = cache_repo(hf_home, "someone/tiny-gpt-oss", {"config.json": "{}"})
    (tiny / "config.json").write_text(json.dumps(preset("tiny").to_transformers()))
    (tiny / "model.safetensors").write_bytes(weights)
    cache_repo(hf_home, "someone/not-gpt-oss", {"config.json": '{"model_type": "llama"}'})

    listed = json.loads(invoke("list", "--json").output)
    assert [(e["id"], e["layout"], e["weights"]) for e in listed] == [
        ("openai/gpt-oss-20b", "original", False),
        ("someone/tiny-gpt-oss", "transformers", True),
    ]
    assert listed[1]["size"] >= len(weights) and listed[0]["path"] == str(snapshot.parent.parent)
    table = invoke("list").output
    assert "someone/tiny-gpt-oss" in table and "original (config only)" in table

    refused = invoke("rm", "someone/not-gpt-oss", "--yes")
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1].startswith("error: someone/not-gpt-oss is not")
    kept = invoke("rm", "someone/tiny-gpt-oss", input="n\n")
    assert kept.exit_code == 1 and tiny.is_dir()
    assert invoke("rm", "someone/tiny-gpt-oss", input="y\n").exit_code == 0
    assert not tiny.exists()
    assert invoke("rm", "openai/gpt-oss-20b", "--yes").exit_code == 0
    assert json.loads(invoke("list", "--json").output) == []
    assert "no gpt-oss checkpoints are cached" in invoke("list").output


def test_list_reads_hf_home_from_the_environment(tmp_path):
    cache_repo(tmp_path, "openai/gpt-oss-120b", {"original/config.json": GPT_OSS_20B})
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    code = "from ossa.model.cli import app; app(['list', '--json'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [e["id"] for e in json.loads(out.stdout)] == ["openai/gpt-oss-120b"], out.stderr


@pytest.mark.parametrize("flag", ["--device", "--context"])
def test_bad_option_values_are_one_line(tiny_original, flag):
    result = invoke("info", str(tiny_original), flag, "tpu" if flag == "--device" else "0")
    assert result.exit_code in (1, 2)
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")

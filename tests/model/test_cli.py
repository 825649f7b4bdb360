from typer.testing import CliRunner

from ossa.model.cli import app

runner = CliRunner()


def test_info_shows_config_counts_bytes_and_memory(tiny_transformers):
    result = runner.invoke(app, ["info", str(tiny_transformers)])
    assert result.exit_code == 0, result.output
    assert "transformers layout" in result.output
    assert "25,965,272" in result.output  # parameters of the tiny preset
    assert "bytes uint8" in result.output and "memory on" in result.output


def test_missing_sources_fail_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    result = runner.invoke(app, ["info", "nobody/no-such-model"])
    assert result.exit_code == 1 and "ossa model pull" in result.output
    result = runner.invoke(app, ["pull", "nobody/no-such-model"])
    assert result.exit_code == 1 and "not in the local Hugging Face cache" in result.output

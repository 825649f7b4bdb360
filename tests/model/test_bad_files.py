"""A model.safetensors that is not one gets one line naming the likely cause, never a traceback
(these ended in MemoryError from the header read)."""

import os
import shutil

import pytest

import ossa.model
from ossa.errors import OssaError
from ossa.model import CheckpointError, checkpoint
from tests.model.conftest import invoke

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4b9e1e0e8f5fb3f8e2b1d5e2f4a0a1d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8\n"
    "size 13761300984\n"
)
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>...</body></html>\n"

CASES = {
    "lfs": (LFS_POINTER.encode(), "git lfs pull"),
    "html": (HTML_PAGE.encode(), "HTML page"),
    "random": (os.urandom(4096), "truncated or corrupt"),
    "empty": (b"", "truncated or corrupt"),
    "short header": ((10**6).to_bytes(8, "little") + b'{"a": 1}', "truncated or corrupt"),
    "not json": ((8).to_bytes(8, "little") + b"\xff" * 8 + b"\0" * 64, "truncated or corrupt"),
}


@pytest.fixture
def bad_checkpoint(tmp_path, tiny_original, request):
    folder = tmp_path / "ckpt" / "original"
    folder.mkdir(parents=True)
    shutil.copy(tiny_original / "original" / "config.json", folder)
    content, _ = CASES[request.param]
    (folder / "model.safetensors").write_bytes(content)
    return tmp_path / "ckpt"


@pytest.mark.parametrize("bad_checkpoint", list(CASES), indirect=True)
def test_load_names_the_likely_cause(bad_checkpoint, request):
    _, cause = CASES[request.node.callspec.params["bad_checkpoint"]]
    with pytest.raises(CheckpointError) as caught:
        ossa.model.load(bad_checkpoint)
    message = str(caught.value)
    assert cause in message and "model.safetensors" in message and "\n" not in message
    assert isinstance(caught.value, OssaError)


@pytest.mark.parametrize("bad_checkpoint", ["lfs", "html", "random"], indirect=True)
def test_model_info_prints_one_line(bad_checkpoint, request):
    _, cause = CASES[request.node.callspec.params["bad_checkpoint"]]
    result = invoke("info", str(bad_checkpoint))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert cause in result.output


def test_tensor_entries_must_match_their_offsets(tmp_path, tiny_original):
    data = (tiny_original / "original" / "model.safetensors").read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + header_len].replace(b'"shape":[', b'"shape":[2,', 1)
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(len(header).to_bytes(8, "little") + header + data[8 + header_len :])
    with pytest.raises(CheckpointError, match="offsets do not match its shape"):
        checkpoint.read_safetensors(bad)

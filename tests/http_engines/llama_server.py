"""A real llama.cpp server for the tests and the bench: build found, tiny model converted, run.

- :func:`llama_cpp_dir` finds the build that ``scripts/build-llama-server.sh`` caches in
  ``~/.cache/ossa/llama.cpp-<version>`` (``OSSA_LLAMA_CPP`` names another).
- :func:`tiny_gguf` (and :func:`convert_to_gguf` for any checkpoint) writes a tiny random gpt-oss checkpoint with :mod:`ossa.model.synth` in
  the published Hugging Face layout (MXFP4 experts), adds the o200k_harmony tokenizer files
  llama.cpp's converter reads (``tokenizer.json`` generated from ossa's shipped tiktoken
  vocabulary with transformers' ``TikTokenConverter``, plus a ``tokenizer_config.json`` that
  marks harmony's special tokens), and converts it with llama.cpp's own
  ``convert_hf_to_gguf.py``.
- :class:`LlamaServer` starts ``llama-server`` on 127.0.0.1 at a free port and stops it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ossa.harmony.tokenizer import PAT_STR, VOCAB_FILE, special_token_table

DATA = Path(__file__).resolve().parents[2] / "ossa" / "data"
VERSION = os.environ.get("LLAMA_CPP_PYTHON_VERSION", "0.3.36")


def llama_cpp_dir() -> Path | None:
    """The cached build (``bin/llama-server`` and the source with the converter), if any."""
    explicit = os.environ.get("OSSA_LLAMA_CPP")
    root = Path(explicit) if explicit else Path.home() / ".cache" / "ossa" / f"llama.cpp-{VERSION}"
    ready = (root / "bin" / "llama-server").is_file() and (
        root / "src" / "convert_hf_to_gguf.py"
    ).is_file()
    return root if ready else None


def write_tokenizer_files(model_dir: Path, vocab_size: int) -> None:
    """``tokenizer.json`` and ``tokenizer_config.json`` for o200k_harmony, from ossa's vocab.

    gpt-oss's Hugging Face repository ships a ``tokenizer.json`` built the same way
    (tiktoken ranks as byte-level BPE, the o200k split pattern, harmony's specials as added
    tokens); generating it keeps the test offline and tied to the vocabulary ossa uses.
    """
    from transformers.convert_slow_tokenizer import TikTokenConverter

    # ossa's table names one id past the model's embedding rows (201088): leave that out
    specials = {n: i for n, i in special_token_table().items() if i < vocab_size}
    names = sorted(specials, key=specials.get)
    converter = TikTokenConverter(
        vocab_file=str(DATA / VOCAB_FILE), pattern=PAT_STR, extra_special_tokens=names
    )
    tokenizer = converter.converted()
    tokenizer.save(str(model_dir / "tokenizer.json"))
    saved = json.loads((model_dir / "tokenizer.json").read_text())
    wrong = [t for t in saved["added_tokens"] if specials.get(t["content"]) != t["id"]]
    if wrong:
        raise AssertionError(f"special token ids differ from ossa's: {wrong[:3]}")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|startoftext|>",
        "eos_token": "<|return|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 131072,
        "added_tokens_decoder": {
            str(i): {
                "content": n,
                "special": True,
                "normalized": False,
                "lstrip": False,
                "rstrip": False,
                "single_word": False,
            }
            for n, i in specials.items()
        },
    }
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))


def tiny_gguf(workdir: Path, llama: Path, *, seed: int = 0) -> Path:
    """A tiny random gpt-oss checkpoint converted to GGUF by llama.cpp's converter."""
    from ossa.model import synth

    hf = synth.write_checkpoint(workdir / "hf", "tiny", layout="transformers", seed=seed)
    return convert_to_gguf(hf, workdir / "tiny.gguf", llama)


def convert_to_gguf(hf: Path, out: Path, llama: Path) -> Path:
    """A checkpoint in the Hugging Face layout, tokenizer files added, converted to ``out`` by
    llama.cpp's converter (MXFP4 experts stay MXFP4; the rest bf16)."""
    write_tokenizer_files(hf, json.loads((hf / "config.json").read_text())["vocab_size"])
    env = {**os.environ, "PYTHONPATH": str(llama / "src" / "gguf-py"), "NO_LOCAL_GGUF": ""}
    subprocess.run(
        [sys.executable, str(llama / "src" / "convert_hf_to_gguf.py"), str(hf),
         "--outfile", str(out), "--outtype", "bf16"],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``llama-server`` serving ``model`` on 127.0.0.1; a context manager that stops it."""

    def __init__(self, llama: Path, model: Path, *, parallel: int = 1, ctx: int = 4096,
                 log: Path | None = None) -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = [
            str(llama / "bin" / "llama-server"), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(self.port), "--parallel", str(parallel), "--ctx-size", str(ctx * parallel),
            "--threads", "2", "--no-webui", "--slots",
        ]  # fmt: skip
        out = log.open("w") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, limit_s: float = 120.0) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"llama-server exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server did not become ready: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log and self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

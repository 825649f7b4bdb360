"""Loading keeps experts packed: resident memory grows by about the checkpoint's bytes."""

import dataclasses
import subprocess
import sys
import textwrap

from ossa.model.config import preset
from ossa.model.synth import write_checkpoint

# experts dominate: 4 layers x 32 experts x 3 x 512 x 512 = 100M parameters, 53 MB as MXFP4
CONFIG = dataclasses.replace(
    preset("tiny"),
    num_hidden_layers=4,
    num_experts=32,
    hidden_size=512,
    intermediate_size=512,
    vocab_size=1024,
)

PROBE = textwrap.dedent(
    """
    import ctypes
    import sys
    import torch
    import ossa.model

    def rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))

    torch.nn.functional.linear(torch.randn(64, 512), torch.randn(512, 512))  # warm torch's pools
    before = rss()
    engine = ossa.model.load(sys.argv[1], expert_cache_bytes=0)
    tokens = list(engine.generate(list(range(200)), max_tokens=4))  # routes to every expert
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # count live memory, not freed temporaries glibc keeps
    print(rss() - before)
    """
)


def test_resident_memory_stays_near_the_packed_size(tmp_path):
    write_checkpoint(tmp_path, CONFIG)
    stored = (tmp_path / "original" / "model.safetensors").stat().st_size
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    grown = int(out.stdout.split()[-1])
    print(f"checkpoint {stored / 2**20:.0f} MiB, resident growth {grown / 2**20:.0f} MiB")
    # bf16 experts alone would be 4x the packed bytes (~200 MiB) on top of them
    assert grown < 2 * stored

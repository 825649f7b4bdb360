"""Peak memory of ossa's engine at a long context, fp32 against bf16 KV cache, one table.

    python3 bench/long_context.py [--shape 20b|medium] [--context 16384] [--threads 2]

Prefilling 16k tokens of gpt-oss-20b takes a CPU like this one a quarter of an hour, and most
of that is arithmetic, not memory. So each run (its own process, so peak RSS is its own):
prefills 512 real tokens (every expert is touched, so the weights are as resident as they get),
writes random keys and values for the positions up to `context - 512` straight into the cache,
then prefills the last 512 real tokens (attention over the whole context: its transient
buffers are the peak) and decodes 8. Peak RSS is the process's maximum resident set: the
mapped weights it touched, the cache, torch and Python. The checkpoint is in the original
layout, the one `ossa model pull` downloads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model import GiB, checkpoint, peak_rss  # noqa: E402

SHAPES = {"medium": "medium", "20b": "gpt-oss-20b"}
CHUNK = 512


def worker(path: str, context: int, kv: str, threads: int) -> dict:
    import time

    import torch

    import ossa.model

    engine = ossa.model.load(path, threads=threads, kv_dtype=getattr(torch, kv))
    model, cfg = engine.model, engine.config
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 200000, (2 * CHUNK + 8,), generator=gen).tolist()
    list(engine.generate(tokens[:CHUNK], max_tokens=1))  # real tokens: every expert touched
    filled = context - CHUNK
    cache = engine._cache
    with torch.no_grad():
        for c in cache:
            c.rewind(CHUNK)
            for start in range(CHUNK, filled, CHUNK):  # random keys/values, chunk by chunk
                n = min(CHUNK, filled - start)
                shape = (n, cfg.num_key_value_heads, cfg.head_dim)
                c.write(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen), start)
    engine._tokens = tokens[:CHUNK] + [0] * (filled - CHUNK)
    t0 = time.perf_counter()
    hidden = model.forward(torch.tensor(tokens[CHUNK : 2 * CHUNK]), filled, cache)
    chunk_s = time.perf_counter() - t0
    position = context
    logits = model.unembed(hidden[-1:])
    t0 = time.perf_counter()
    for _ in range(8):
        token = int(logits.argmax())
        logits = model.unembed(model.forward(torch.tensor([token]), position, cache))
        position += 1
    decode_tps = 8 / (time.perf_counter() - t0)
    kv_bytes = sum(t.numel() * t.element_size() for c in cache for t in (c.k, c.v))
    return {
        "peak_rss": peak_rss(),
        "kv_bytes": kv_bytes,
        "chunk_s": chunk_s,
        "decode_tps": decode_tps,
        "kernel": ossa.model.kernel.available(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="20b")
    parser.add_argument("--context", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ossa-bench")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.path, args.context, args.worker, args.threads)))
        return
    if args.context < 3 * CHUNK:
        sys.exit(f"--context must be at least {3 * CHUNK}")
    path = checkpoint(
        args.cache, SHAPES[args.shape], fast=args.shape != "medium", layout="original"
    )
    print(f"{args.shape} shape at a {args.context}-token context, {args.threads} threads")
    print(f"{'KV cache':<10}{'peak RSS':>12}{'KV bytes':>12}{'last chunk':>12}{'decode':>12}")
    for kv in ("float32", "bfloat16"):
        cmd = [sys.executable, __file__, "--worker", kv, "--path", str(path)]
        cmd += ["--context", str(args.context), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the {kv} run failed:\n{done.stderr[-2000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{kv:<10}{r['peak_rss'] / GiB:>8.2f} GiB{r['kv_bytes'] / GiB:>8.2f} GiB"
            f"{r['chunk_s']:>10.1f} s{r['decode_tps']:>8.1f} tok/s"
        )
    print(f"last chunk: {CHUNK} tokens prefilled at the end of the context; decode: 8 tokens")


if __name__ == "__main__":
    main()

"""ossa's engine against transformers on the same random gpt-oss checkpoint, one table.

    python3 bench/model.py [--threads 2] [--prompt 512] [--decode 32] [--full-20b] [--device cuda]

Each implementation runs in its own subprocess, so peak RSS is its own. Checkpoints are
synthesized once (`ossa.model.synth`, transformers layout, read by both) and cached on disk.
On `--device cuda` both run in bf16 (transformers in fp32 on a CPU, as ossa's activations are)
and the peak GPU memory is shown as well.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

GiB = 1 << 30


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_gpu(device: str) -> int:
    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0


def worker_ossa(
    path: str, prompt: int, decode: int, threads: int, cache_gib: float, device: str
) -> dict:
    import ossa.model

    t0 = time.perf_counter()
    engine = ossa.model.load(
        path, threads=threads, expert_cache_bytes=int(cache_gib * GiB), device=device
    )
    load_s = time.perf_counter() - t0
    tokens = torch.randint(
        0, 200000, (prompt,), generator=torch.Generator().manual_seed(0)
    ).tolist()
    # the same call first, as llama-bench warms up: the weights are mapped from disk at load,
    # and their first touch (page faults, disk reads when the page cache was evicted) is the
    # load's cost, not prefill's; a short prompt would leave most experts untouched
    for _ in range(2):  # twice: under memory pressure the first pass alone left it cold
        list(engine.generate(tokens, max_tokens=2))
        engine.reset()
    generation = engine.generate(tokens, max_tokens=decode + 1)
    out = list(generation)
    s = generation.usage
    return {
        "kernel": ossa.model.kernel.available(),
        "load_s": load_s,
        "prefill_tps": prompt / s.prefill_s,
        "decode_tps": (len(out) - 1) / s.decode_s,
        "peak_rss": peak_rss(),
        "peak_gpu": peak_gpu(device),
    }


def worker_transformers(
    path: str, prompt: int, decode: int, threads: int, _: float, device: str
) -> dict:
    from transformers import GptOssForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.set_num_threads(threads)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    model = GptOssForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    load_s = time.perf_counter() - t0
    ids = torch.randint(0, 200000, (1, prompt), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    with torch.no_grad():
        model(ids[:, :16], use_cache=True)  # warm-up (kernels, first touch)
        sync()
        t0 = time.perf_counter()
        out = model(ids, use_cache=True)
        sync()
        prefill_s = time.perf_counter() - t0
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        t0 = time.perf_counter()
        for _ in range(decode):
            out = model(token, past_key_values=past, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        sync()
        decode_s = time.perf_counter() - t0
    return {
        "load_s": load_s,
        "prefill_tps": prompt / prefill_s,
        "decode_tps": decode / decode_s,
        "peak_rss": peak_rss(),
        "peak_gpu": peak_gpu(device),
    }


def worker_agent(
    path: str, prompt: int, decode: int, threads: int, cache_gib: float, device: str
) -> dict:
    """Five calls, each prompt extending the last prompt and its output by 64 new tokens."""
    import ossa.model

    engine = ossa.model.load(
        path, threads=threads, expert_cache_bytes=int(cache_gib * GiB), device=device
    )
    gen = torch.Generator().manual_seed(1)
    result = {}
    for reuse in (True, False):
        history = torch.randint(0, 200000, (prompt,), generator=gen).tolist()
        prefilled = reused = 0
        t0 = time.perf_counter()
        for _ in range(5):
            if not reuse:
                engine.reset()
            generation = engine.generate(history, max_tokens=decode)
            history += list(generation)
            prefilled += generation.usage.prefilled_tokens
            reused += generation.usage.reused_tokens
            history += torch.randint(0, 200000, (64,), generator=gen).tolist()
        key = "reuse" if reuse else "fresh"
        result[key] = {"wall_s": time.perf_counter() - t0, "prefilled": prefilled, "reused": reused}
    return result


WORKERS = {"ossa": worker_ossa, "transformers": worker_transformers, "agent": worker_agent}


def run_worker(name: str, path: Path, args: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", name, "--path", str(path)]
    for flag in ("prompt", "decode", "threads", "expert_cache_gib", "device"):
        cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        print(f"{name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def checkpoint(cache: Path, name: str, *, fast: bool = False, layout: str = "transformers") -> Path:
    """A random checkpoint of preset `name`, synthesized once under `cache` (the original layout
    in `NAME-original`: what `ossa model pull` downloads; transformers' is what other engines
    read)."""
    from ossa.model import synth

    path = cache / (name if layout == "transformers" else f"{name}-{layout}")
    if not (path / "config.json").is_file() and not (path / "original" / "config.json").is_file():
        print(f"synthesizing the {name} checkpoint under {path} ...", file=sys.stderr)
        tmp = path.with_name(path.name + ".partial")
        synth.write_checkpoint(tmp, name, layout=layout, fast=fast)
        tmp.rename(path)
    return path


def memory_bandwidth() -> float:
    """Read bandwidth in bytes/s: torch.sum over 1 GiB of fp32, best of 5."""
    x = torch.ones(GiB // 4)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - t0)
    return GiB / best


def bytes_per_token() -> int:
    """Weights read per decoded token: the routed experts packed, all the rest bf16."""
    from ossa.model.config import preset

    cfg = preset("gpt-oss-20b")
    dense = cfg.parameter_counts()["bf16"] - cfg.vocab_size * cfg.hidden_size  # one embedding row
    dense -= cfg.num_hidden_layers * cfg.num_experts * (3 * cfg.intermediate_size)  # expert biases
    return 2 * dense + cfg.num_hidden_layers * cfg.experts_per_token * cfg.expert_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--decode", type=int, default=32)
    parser.add_argument(
        "--expert-cache-gib", type=float, default=2.0, help="ossa's dequantized-expert cache"
    )
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ossa-bench")
    parser.add_argument("--full-20b", action="store_true", help="also run the 20b shape (~13 GB)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both implementations)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(
            json.dumps(
                WORKERS[args.worker](
                    args.path,
                    args.prompt,
                    args.decode,
                    args.threads,
                    args.expert_cache_gib,
                    args.device,
                )
            )
        )
        return

    medium = checkpoint(args.cache, "medium")
    print(
        f"medium shape (8 layers, hidden 1024, 32 experts top-4), {args.prompt}-token prompt, "
        f"{args.decode} decoded tokens, {args.threads} threads, load average "
        f"{os.getloadavg()[0]:.1f}, device {args.device}"
    )
    print(
        f"{'implementation':<16}{'load s':>8}{'prefill tok/s':>15}{'decode tok/s':>14}"
        f"{'peak RSS GiB':>14}{'peak GPU GiB':>14}"
    )
    rows = {}
    for name in ("ossa", "transformers"):
        rows[name] = r = run_worker(name, medium, args)
        if r:
            print(
                f"{name:<16}{r['load_s']:>8.1f}{r['prefill_tps']:>15.1f}{r['decode_tps']:>14.2f}"
                f"{r['peak_rss'] / GiB:>14.2f}{r['peak_gpu'] / GiB:>14.2f}"
            )
    print(f"{'gpt-oss torch':<16}  not installed: skipped")
    if rows["ossa"]:
        print(f"ossa's C decode kernels: {'used' if rows['ossa']['kernel'] else 'unavailable'}")
    if rows["ossa"] and rows["transformers"]:
        print(
            f"ossa decode speed-up over transformers: "
            f"{rows['ossa']['decode_tps'] / rows['transformers']['decode_tps']:.2f}x"
        )

    agent = run_worker("agent", medium, args)
    if agent:
        print("\nagent-like sequence: 5 calls, each prompt = last prompt + output + 64 new tokens")
        print(f"{'cache':<16}{'prefilled':>10}{'reused':>10}{'wall s':>10}")
        for key, r in agent.items():
            print(f"{key:<16}{r['prefilled']:>10}{r['reused']:>10}{r['wall_s']:>10.1f}")

    if args.full_20b:
        path = checkpoint(args.cache, "gpt-oss-20b", fast=True)
        # a smaller expert cache keeps the whole process under 14 GiB
        small = {"prompt": 16, "decode": 8, "expert_cache_gib": min(args.expert_cache_gib, 0.5)}
        r = run_worker("ossa", path, argparse.Namespace(**{**vars(args), **small}))
        bw = memory_bandwidth()
        need = bytes_per_token()
        print("\ngpt-oss-20b shape (16-token prompt, 8 decoded tokens, all 24 layers)")
        print(
            f"memory bandwidth {bw / 1e9:.1f} GB/s, {need / 1e9:.2f} GB read per token: "
            f"bound {bw / need:.2f} tok/s"
        )
        if r:
            print(
                f"ossa: load {r['load_s']:.1f} s, decode {r['decode_tps']:.2f} tok/s "
                f"({r['decode_tps'] / (bw / need):.0%} of the bound), peak RSS {r['peak_rss'] / GiB:.2f} GiB"
            )


if __name__ == "__main__":
    main()

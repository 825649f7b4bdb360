"""ossa against llama.cpp on the same random gpt-oss checkpoint: prefill and decode ratios.

    python3 bench/llamacpp.py [--shape medium|20b] [--runs 3] [--threads 2]

The checkpoint is synthesized once (`ossa.model.synth`, Hugging Face layout, MXFP4 experts)
and converted with llama.cpp's own `convert_hf_to_gguf.py` (experts stay MXFP4, the rest bf16),
so both engines compute with the same weights. llama.cpp comes from
`scripts/build-llama-server.sh` (its cache dir); `llama-bench` is built there on first use.

medium: prefill 512 tokens, decode 64 after them. 20b (13 GB synthesized, slow): prefill 128,
decode 32 after them. `--simd avx2` compares both as they run on a CPU without AVX-512: ossa
with its AVX2 kernels (and torch's own ops on AVX2), llama.cpp from a second build with AVX2 and
without AVX-512 (built on first use, ~10 minutes). Runs alternate ossa / llama.cpp; the table shows medians. The machine this
was written on is shared with other work: the CPU time other processes took during the runs
(all CPU time in /proc/stat less this script's and its children's) is printed, and figures
taken while others used more than `--quiet-cores` of a core on average are flagged as
contended. (The load average cannot tell: the runs themselves keep it near the thread count.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "http_engines"))
sys.path.insert(0, str(ROOT / "bench"))

from llama_server import convert_to_gguf  # noqa: E402
from model import checkpoint, run_worker  # noqa: E402

# the instruction sets compared: the CPU's best, or AVX2 alone (as on CPUs without AVX-512):
# ossa's environment, and llama.cpp's build flags and build folder
SIMD = {
    "native": ({}, ["-DGGML_NATIVE=ON"], "build"),
    "avx2": (
        {"OSSA_KERNEL_AVX2": "1", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
        ["-DGGML_NATIVE=OFF", *(f"-DGGML_{x}=ON" for x in ("AVX", "AVX2", "FMA", "F16C", "BMI2"))],
        "build-avx2",
    ),
}
SHAPES = {  # name: (synth preset, prompt tokens, decoded tokens)
    "medium": ("medium", 512, 64),
    "20b": ("gpt-oss-20b", 128, 32),
}


def busy_seconds() -> float:
    """CPU time spent by everything on this machine so far (/proc/stat, all but idle)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])  # idle and iowait
    return (sum(int(f) for f in fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU time of this process and its finished children."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def llama_cpp(simd: str) -> tuple[Path, Path]:
    """The cached llama.cpp (built by the project's script if missing) and its llama-bench for
    `simd`: the server's own native build, or a second build beside it."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-llama-server.sh")],
        check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    root = Path(done.stdout.strip().splitlines()[-1])
    _, flags, folder = SIMD[simd]
    bench = root / "bin" / ("llama-bench" if simd == "native" else f"llama-bench-{simd}")
    if not bench.is_file():
        print(f"building llama-bench ({simd}; a few minutes) ...", file=sys.stderr)
        build = root / folder
        if not (build / "build.ninja").is_file():
            subprocess.run(
                ["cmake", "-S", str(root / "src"), "-B", str(build), "-G", "Ninja",
                 "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                 "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF", *flags],
                check=True, stdout=sys.stderr,
            )  # fmt: skip
        subprocess.run(
            ["cmake", "--build", str(build), "--target", "llama-bench", "-j2"],
            check=True, stdout=sys.stderr,
        )  # fmt: skip
        bench.write_bytes((build / "bin" / "llama-bench").read_bytes())
        bench.chmod(0o755)
    return root, bench


def gguf(llama: Path, hf: Path) -> Path:
    out = hf.with_name(hf.name + ".gguf")
    if not out.is_file():
        print(f"converting {hf} with llama.cpp's converter ...", file=sys.stderr)
        tmp = out.with_name(out.name + ".partial")
        convert_to_gguf(hf, tmp, llama)
        tmp.rename(out)
    return out


def llama_run(bench: Path, model: Path, threads: int, prompt: int, decode: int) -> dict:
    """llama-bench's tokens/s: prefill of `prompt`, then decode of `decode` at depth `prompt`."""
    tool = [str(bench), "-m", str(model), "-t", str(threads), "-r", "1", "-o", "json"]
    figures = {}
    for key, args in (
        ("prefill_tps", ["-p", str(prompt), "-n", "0"]),
        ("decode_tps", ["-p", "0", "-n", str(decode), "-d", str(prompt)]),
    ):
        done = subprocess.run([*tool, *args], check=True, capture_output=True, text=True)
        figures[key] = json.loads(done.stdout)[0]["avg_ts"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="medium")
    parser.add_argument("--simd", choices=sorted(SIMD), default="native")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ossa-bench")
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.2,
        help="other processes' average use of the CPUs (in cores) above which runs are contended",
    )
    args = parser.parse_args()
    preset, prompt, decode = SHAPES[args.shape]
    llama, bench = llama_cpp(args.simd)
    os.environ.update(SIMD[args.simd][0])  # the ossa worker inherits it
    hf = checkpoint(args.cache, preset, fast=preset != "medium")
    model = gguf(llama, hf)
    worker_args = argparse.Namespace(
        prompt=prompt, decode=decode, threads=args.threads, expert_cache_gib=0.5, device="cpu"
    )
    before = busy_seconds(), own_seconds(), time.monotonic()
    runs: dict[str, list[dict]] = {"ossa": [], "llama.cpp": []}
    for _ in range(args.runs):
        result = run_worker("ossa", hf, worker_args)
        if result is None:
            sys.exit("the ossa run failed")
        runs["ossa"].append(result)
        runs["llama.cpp"].append(llama_run(bench, model, args.threads, prompt, decode))
    others = ((busy_seconds() - before[0]) - (own_seconds() - before[1])) / (
        time.monotonic() - before[2]
    )

    print(
        f"{args.shape} shape, {args.simd}, {args.threads} threads, {args.runs} alternating runs, "
        "medians; "
        f"other processes used {max(others, 0):.2f} cores on average"
    )
    if others > args.quiet_cores:
        print(
            "CONTENDED: other processes shared the CPU (a shared machine); trust the ratios "
            "more than the absolute figures, and rerun on a quiet machine"
        )
    print(
        f"{'':<22}{'ossa':>10}{'llama.cpp':>12}{'ratio':>8}{'run ratios':>12}   runs ossa / llama.cpp"
    )
    for key, label in (("prefill_tps", f"prefill {prompt}"), ("decode_tps", f"decode {decode}")):
        ours = [r[key] for r in runs["ossa"]]
        theirs = [r[key] for r in runs["llama.cpp"]]
        paired = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        ratio = statistics.median(ours) / statistics.median(theirs)
        each = ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(ours, theirs, strict=True))
        print(
            f"{label + ' tok/s':<22}{statistics.median(ours):>10.1f}"
            f"{statistics.median(theirs):>12.1f}{ratio:>7.2f}x{paired:>11.2f}x   {each}"
        )
    print("ratio: of the medians; run ratios: the median of each run's ossa / llama.cpp pair")
    rss = max(r["peak_rss"] for r in runs["ossa"]) / (1 << 30)
    print(
        f"ossa peak RSS {rss:.2f} GiB; C kernels {'used' if runs['ossa'][0]['kernel'] else 'off'}"
    )


if __name__ == "__main__":
    main()

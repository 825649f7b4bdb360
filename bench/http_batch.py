"""``ossa batch`` against a real llama.cpp server: concurrency 1 vs N on the same 8 tasks.

The server (``llama-server --parallel 4``) serves ossa's tiny random gpt-oss checkpoint,
converted by llama.cpp's own converter; it writes nonsense that never stops, so every task
is the same fixed work: one model call of ``--max-tokens`` tokens. The script runs the
``ossa batch`` command as a user would, once per concurrency, polls ``/slots`` meanwhile to
see how many of the server's slots were busy at once, and prints wall time and throughput.

Needs the cached build from ``scripts/build-llama-server.sh``. Measured on the shared
2-core dev machine (8 tasks of 256 tokens each): concurrency 1 took 117 s (17.5 tokens/s, one
slot busy at a time); concurrency 4 took 38 s (54.2 tokens/s, 4 slots busy at once), 3.1x.

    python bench/http_batch.py [--tasks 8] [--concurrency 4] [--parallel 4] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "http_engines"))

from llama_server import LlamaServer, llama_cpp_dir, tiny_gguf  # noqa: E402


def busy_slots(url: str, stop: threading.Event, seen: list[int]) -> None:
    """The most slots processing at once, sampled every 20 ms."""
    while not stop.is_set():
        try:
            slots = httpx.get(f"{url}/slots", timeout=2).json()
            seen.append(sum(1 for s in slots if s.get("is_processing")))
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.02)


def run_batch(url: str, work: Path, tasks: int, concurrency: int, max_tokens: int) -> dict:
    todo = work / f"tasks-{concurrency}.jsonl"
    todo.write_text(
        "".join(json.dumps({"id": i, "task": f"task {i}"}) + "\n" for i in range(tasks))
    )
    out = work / f"results-{concurrency}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OSSA_HOME": str(work / "home")}
    command = [
        sys.executable, "-m", "ossa", "batch", str(todo), "-o", str(out),
        "--model", f"llamacpp:{url}", "--tools", "", "--max-tokens", str(max_tokens),
        "--concurrency", str(concurrency),
    ]  # fmt: skip
    stop, seen = threading.Event(), []
    poller = threading.Thread(target=busy_slots, args=(url, stop, seen), daemon=True)
    poller.start()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    stop.set()
    poller.join()
    results = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if len(results) != tasks:
        raise SystemExit(f"batch wrote {len(results)} of {tasks} results: {done.stderr[-2000:]}")
    tokens = sum(r["usage"]["output_tokens"] for r in results)
    return {
        "concurrency": concurrency,
        "tasks": len(results),
        "statuses": sorted({r["status"] for r in results}),
        "wall_s": round(wall, 2),
        "output_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "max_busy_slots": max(seen, default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    llama = llama_cpp_dir()
    if llama is None:
        raise SystemExit("no llama.cpp build: run scripts/build-llama-server.sh first")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = tiny_gguf(work, llama)
        with LlamaServer(
            llama, model, parallel=args.parallel, ctx=2048, log=work / "server.log"
        ) as server:
            rows = [
                run_batch(server.url, work, args.tasks, c, args.max_tokens)
                for c in (1, args.concurrency)
            ]
    for row in rows:
        print(json.dumps(row))
    speedup = rows[0]["wall_s"] / rows[1]["wall_s"]
    print(f"concurrency {args.concurrency} vs 1: {speedup:.2f}x wall-clock speed-up")


if __name__ == "__main__":
    main()

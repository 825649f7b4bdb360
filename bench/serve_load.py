"""Load on ``ossa serve``: concurrent streaming clients on the replay engine.

Starts ``ossa serve --model replay:FILE`` on 127.0.0.1 (a free port) as a separate process,
then runs N clients at once (httpx in one asyncio process, JSON per event), each streaming
one Responses call. (The ``openai`` SDK's clients are checked in ``tests/serve``; its
per-event models cost more than the server, so they would measure the client.)
Every recorded completion is a distinct answer; the script checks that every client
completes, that each one's streamed deltas equal its own final output, and that the
answers are exactly the recorded ones (none lost, none duplicated, none mixed). It prints
the latency to the first text delta and to the end, p50 and p99.

The replay engine is serial, as the local engine is: clients take turns in arrival order,
so the end-to-end latency grows with the queue, which is what this measures (the server's
per-request overhead: parsing, the agent loop, harmony, SSE), not a model.

    python bench/serve_load.py [--clients 32] [--words 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def completions(n: int, words: int) -> list[str]:
    """N distinct answers of about ``words`` words, with a little reasoning each."""
    return [
        f"<|channel|>analysis<|message|>Client {i} asked; answer it.<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>answer-{i}: "
        + " ".join(f"w{i}.{k}" for k in range(words))
        + "<|return|>"
        for i in range(n)
    ]


async def client(http: httpx.AsyncClient, url: str, i: int, start: float) -> dict:
    """One streaming client: reads the server-sent events, keeps its deltas and final output."""
    first = final = None
    deltas = []
    body = {"model": "gpt-oss", "input": f"question {i}", "stream": True}
    async with http.stream("POST", f"{url}/responses", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: ") :])
            if event["type"] == "response.output_text.delta":
                first = first or time.perf_counter()
                deltas.append(event["delta"])
            elif event["type"] == "response.completed":
                final = event["response"]
    end = time.perf_counter()
    text = "".join(
        part["text"]
        for item in (final or {}).get("output", [])
        if item["type"] == "message"
        for part in item["content"]
    )
    return {
        "text": text,
        "streamed": "".join(deltas),
        "first": (first or end) - start,
        "total": end - start,
        "status": final["status"] if final else "missing",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(base_url: str, n: int) -> list[dict]:
    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(limits=limits, timeout=600) as http:
        start = time.perf_counter()
        return list(await asyncio.gather(*(client(http, base_url, i, start) for i in range(n))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--words", type=int, default=200)
    args = parser.parse_args()
    recorded = completions(args.clients, args.words)
    with tempfile.TemporaryDirectory() as tmp:
        replay = Path(tmp) / "load.jsonl"
        replay.write_text("".join(json.dumps({"completion": c}) + "\n" for c in recorded))
        port = free_port()
        env = {**os.environ, "OSSA_HOME": tmp}
        command = [sys.executable, "-m", "ossa", "serve", "--model", f"replay:{replay}"]
        command += ["--port", str(port), "--tools", "none", "--store", f"{tmp}/r.sqlite3"]
        server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            for _ in range(600):
                try:
                    httpx.get(f"{base_url}/models", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            wall = time.perf_counter()
            results = asyncio.run(run(base_url, args.clients))
            wall = time.perf_counter() - wall
        finally:
            server.terminate()
            server.wait(30)
    expected = sorted(c.split("<|message|>")[-1].removesuffix("<|return|>") for c in recorded)
    ok = all(r["status"] == "completed" and r["streamed"] == r["text"] for r in results)
    ok = ok and sorted(r["text"] for r in results) == expected
    first = [r["first"] for r in results]
    total = [r["total"] for r in results]
    print(f"{args.clients} streaming clients, {args.words}-word answers, replay engine (serial)")
    print(f"all completed with their own outputs: {'yes' if ok else 'NO'}")
    print(f"first delta  p50 {percentile(first, 0.5):.3f}s  p99 {percentile(first, 0.99):.3f}s")
    print(f"complete     p50 {percentile(total, 0.5):.3f}s  p99 {percentile(total, 0.99):.3f}s")
    print(f"wall {wall:.2f}s, {args.clients / wall:.1f} responses/s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

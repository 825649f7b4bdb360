"""Prefill work of an agent conversation: ossa's prefix reuse vs re-prefilling every call.

The reference gpt-oss ``chat.py`` (Triton) and the Responses API's transformers backend
prefill the whole conversation on every model call. ossa renders the whole conversation too,
but its engine keeps the KV cache of the common prefix. This script records the prompts of a
real agent run (the README's demo, browser on the local corpus, replayed completions), then
feeds them to a tiny random-weight gpt-oss checkpoint both ways and prints a table.

    python bench/agent_prefix_reuse.py [--turns 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ossa.agent.engines import ReplayEngine, open_engine
from ossa.agent.loop import Agent
from ossa.model import synth
from ossa.tools import build_toolbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def record_prompts(turns: int, workdir: Path) -> list[list[int]]:
    """The prompt of every model call in a ``turns``-turn conversation with browser calls."""
    calls = [
        '<|channel|>analysis<|message|>Search first.<|end|><|start|>assistant<|channel|>analysis to=browser.search <|constrain|>json<|message|>{"query": "MXFP4 block"}<|call|>',
        '<|channel|>analysis<|message|>Open it.<|end|><|start|>assistant<|channel|>analysis to=browser.open <|constrain|>json<|message|>{"id": 0}<|call|>',
        "<|channel|>analysis<|message|>Answer.<|end|><|start|>assistant<|channel|>final<|message|>17 bytes 【1†L4-L6】.<|return|>",
    ]
    replay = workdir / "bench.jsonl"
    replay.write_text("".join(json.dumps({"completion": c}) + "\n" for c in calls * turns))
    engine = ReplayEngine(replay)
    toolbox = build_toolbox(
        ["browser"], search_backend="local", corpus_dir=str(EXAMPLES / "corpus"), plugins=False
    )
    agent = Agent(engine, toolbox, start_date="2026-11-28")
    for turn in range(turns):
        list(agent.run(f"Question {turn + 1}: how many bytes does an MXFP4 block take?"))
    toolbox.close()
    return engine.prompts


def prefill(checkpoint: Path, prompts: list[list[int]], *, reuse: bool) -> dict[str, float]:
    totals = {"prefilled": 0, "reused": 0, "seconds": 0.0}
    engine = open_engine(str(checkpoint))
    for prompt in prompts:
        if not reuse:
            engine = open_engine(str(checkpoint))  # a fresh cache: what re-prefilling costs
        list(engine.generate(prompt, max_tokens=1))
        totals["prefilled"] += engine.stats.prefilled_tokens
        totals["reused"] += engine.stats.reused_tokens
        totals["seconds"] += engine.stats.prefill_s
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prompts = record_prompts(args.turns, work)
        checkpoint = synth.write_checkpoint(work / "tiny", "tiny", layout="original")
        rows = {
            "re-prefill every call (gpt-oss chat.py / transformers)": prefill(
                checkpoint, prompts, reuse=False
            ),
            "ossa (whole conversation, prefix reuse)": prefill(checkpoint, prompts, reuse=True),
        }
    total = sum(len(p) for p in prompts)
    print(
        f"{args.turns} turns, {len(prompts)} model calls, {total} prompt tokens in all (tiny random checkpoint, CPU)\n"
    )
    print(f"| {'strategy':<56} | prefilled | reused | prefill s |")
    print(f"|{'-' * 58}|-----------|--------|-----------|")
    for name, row in rows.items():
        print(
            f"| {name:<56} | {row['prefilled']:>9} | {row['reused']:>6} | {row['seconds']:>9.2f} |"
        )


if __name__ == "__main__":
    main()

"""Prefill work of an agent conversation: exact completion tokens vs re-rendered completions.

An engine's KV cache holds each completion as generated. ossa keeps those tokens in the
conversation (``ossa.agent.context``), so within a turn each model call prefills only what
is new: the tool's output and the message headers. Re-rendering completions from their
parsed messages (what ossa did before, and what a harmony renderer gives) writes a tool
call's ``to=`` before the channel where gpt-oss writes it after, so the prompt leaves the
cache at every tool call; harmony's as-implemented dropping rule also brings an answered
turn's reasoning back during the next turn's tool calls.

The script runs the README's demo conversation (browser on the local corpus, completions
replayed as gpt-oss writes them) both ways, prints per model call what the replay engine's
cache model reused and prefilled against the new tokens, then feeds both prompt sequences to
a tiny random-weight gpt-oss checkpoint (completions teacher-forced, as if sampled) to time
the prefill the local engine really does.

    python bench/agent_prefix_reuse.py [--turns 3] [--no-model]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ossa.agent.engines import ReplayEngine, open_engine
from ossa.agent.loop import Agent
from ossa.harmony import Conversation, Message, Role
from ossa.tools import build_toolbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: One turn: search, open, answer, written as gpt-oss writes them (``to=`` after the channel).
CALLS = [
    "<|channel|>analysis<|message|>Search first.<|end|><|start|>assistant<|channel|>analysis"
    ' to=browser.search <|constrain|>json<|message|>{"query": "MXFP4 block"}<|call|>',
    "<|channel|>analysis<|message|>Open it.<|end|><|start|>assistant<|channel|>analysis"
    ' to=browser.open <|constrain|>json<|message|>{"id": 0}<|call|>',
    "<|channel|>analysis<|message|>Answer.<|end|><|start|>assistant<|channel|>final"
    "<|message|>17 bytes 【1†L4-L6】.<|return|>",
]


class RerenderingAgent(Agent):
    """The agent as it was: every prompt re-rendered from parsed messages by harmony."""

    def render(self, messages: list[Message] | None = None) -> list[int]:
        convo = Conversation.from_messages(self.messages if messages is None else messages)
        return self.encoding.render_conversation_for_completion(convo, Role.ASSISTANT)


def run(agent_class: type[Agent], turns: int, workdir: Path) -> ReplayEngine:
    """A ``turns``-turn conversation with browser calls; the engine keeps prompts and usage."""
    replay = workdir / f"{agent_class.__name__}.jsonl"
    replay.write_text("".join(json.dumps({"completion": c}) + "\n" for c in CALLS * turns))
    engine = ReplayEngine(replay)
    toolbox = build_toolbox(
        ["browser"], search_backend="local", corpus_dir=str(EXAMPLES / "corpus"), plugins=False
    )
    agent = agent_class(engine, toolbox, start_date="2026-11-28")
    for turn in range(turns):
        list(agent.run(f"Question {turn + 1}: how many bytes does an MXFP4 block take?"))
    toolbox.close()
    return engine


def per_call(engine: ReplayEngine, completions: list[list[int]]) -> list[dict[str, int | str]]:
    """Per model call: reused and prefilled, and the new tokens where a call continues a turn.

    A turn's later calls continue its previous call: their new tokens are the prompt beyond
    the previous prompt and completion (tool output and headers). A turn's first call starts
    from the user's message, after the previous turn's reasoning was dropped.
    """
    rows = []
    for n, (prompt, usage) in enumerate(zip(engine.prompts, engine.calls, strict=True)):
        continues = n % len(CALLS) != 0
        seen = engine.prompts[n - 1] + completions[n - 1] if continues else []
        extends = continues and prompt[: len(seen)] == seen
        rows.append(
            {
                "call": f"{n // len(CALLS) + 1}.{n % len(CALLS) + 1}",
                "prompt": len(prompt),
                "reused": usage.reused_tokens,
                "prefilled": usage.prefilled_tokens,
                "new": len(prompt) - len(seen) if extends else "-",
            }
        )
    return rows


def local_prefill(checkpoint: Path, engine: ReplayEngine, completions: list[list[int]]):
    """Prefilled prompt tokens and seconds on the local engine, completions teacher-forced."""
    local = open_engine(str(checkpoint))
    prefilled, seconds = 0, 0.0
    for prompt, completion in zip(engine.prompts, completions, strict=True):
        generation = local.generate(prompt + completion[:-1], max_tokens=1)
        list(generation)
        # the completion's tokens are decoded in a real run: count only the prompt's prefill
        prefilled += generation.usage.prefilled_tokens - (len(completion) - 1)
        seconds += generation.usage.prefill_s
    return prefilled, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--no-model", action="store_true", help="skip the tiny checkpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engines = {
            "exact": run(Agent, args.turns, work),
            "re-rendered": run(RerenderingAgent, args.turns, work),
        }
        encoding = engines["exact"]._encoding
        completions = [encoding.encode(c, allowed_special="all") for c in CALLS * args.turns]
        tables = {name: per_call(engine, completions) for name, engine in engines.items()}
        print(
            f"{args.turns} turns x {len(CALLS)} model calls (replay engine: its cache holds every prompt and completion)\n"
        )
        header = "| call | exact: prompt | reused | prefilled | new | re-rendered: prompt | reused | prefilled |"
        print(header)
        print("".join(c if c == "|" else "-" for c in header))
        for exact, old in zip(tables["exact"], tables["re-rendered"], strict=True):
            print(
                f"| {exact['call']:>4} | {exact['prompt']:>13} | {exact['reused']:>6} "
                f"| {exact['prefilled']:>9} | {exact['new']:>3} | {old['prompt']:>19} "
                f"| {old['reused']:>6} | {old['prefilled']:>9} |"
            )
        total = {name: sum(int(r["prefilled"]) for r in rows) for name, rows in tables.items()}
        print(f"\nprefilled in all: exact {total['exact']}, re-rendered {total['re-rendered']}")
        if not args.no_model:
            from ossa.model import synth

            checkpoint = synth.write_checkpoint(work / "tiny", "tiny", layout="original")
            print("\ntiny random checkpoint, local engine, CPU (prompt tokens prefilled, seconds):")
            for name, engine in engines.items():
                prefilled, seconds = local_prefill(checkpoint, engine, completions)
                print(f"  {name:<12} {prefilled:>6} tokens {seconds:>7.2f} s")


if __name__ == "__main__":
    main()

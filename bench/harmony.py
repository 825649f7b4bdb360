"""Benchmark ossa.harmony against openai-harmony (Rust) in one run.

Renders a long tool-using conversation and parses a ~20k-token completion token by token
(reading the delta after each token, as a streaming server does), then prints a table.

    python3 bench/harmony.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TIKTOKEN_ENCODINGS_BASE", str(Path(__file__).parents[1] / "ossa" / "data"))

import openai_harmony as oh  # noqa: E402

from ossa import harmony as h  # noqa: E402

WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
    },
    "required": ["location"],
}
PROSE = (
    "The harmony format separates reasoning from answers. Channels keep analysis apart from the "
    "final reply, and tool calls travel on commentary with a recipient and a JSON payload. "
)


def conversation(m, turns: int = 25):
    """A long agent session built through either library's API (they share the names)."""
    system = m.SystemContent.new().with_browser_tool().with_python_tool()
    developer = m.DeveloperContent.new().with_instructions("Answer briefly.")
    developer = developer.with_function_tools(
        [m.ToolDescription.new("get_weather", "Gets the weather.", parameters=WEATHER)]
    )
    messages = [
        m.Message.from_role_and_content(m.Role.SYSTEM, system),
        m.Message.from_role_and_content(m.Role.DEVELOPER, developer),
    ]
    for i in range(turns):
        call = f'{{"location": "City {i}", "unit": "celsius"}}'
        messages += [
            m.Message.from_role_and_content(m.Role.USER, f"Question {i}: " + PROSE * 3),
            m.Message.from_role_and_content(m.Role.ASSISTANT, PROSE * 4).with_channel("analysis"),
            m.Message.from_role_and_content(m.Role.ASSISTANT, call)
            .with_channel("commentary")
            .with_recipient("functions.get_weather")
            .with_content_type("<|constrain|>json"),
            m.Message.from_author_and_content(
                m.Author.new(m.Role.TOOL, "functions.get_weather"), '{"temp": 21, "sky": "clear"}'
            )
            .with_channel("commentary")
            .with_recipient("assistant"),
            m.Message.from_role_and_content(m.Role.ASSISTANT, PROSE * 2).with_channel("analysis"),
            m.Message.from_role_and_content(m.Role.ASSISTANT, PROSE * 5).with_channel("final"),
        ]
    return m.Conversation.from_messages(messages)


def completion(enc: h.HarmonyEncoding, target: int = 20_000) -> list[int]:
    """A completion as the model samples it (after <|start|>assistant): CoT and tool calls."""
    messages = []
    while True:
        messages += [
            h.Message.from_role_and_content(
                h.Role.ASSISTANT, PROSE * 8 + "🙂 naïve 日本語"
            ).with_channel("analysis"),
            h.Message.from_role_and_content(h.Role.ASSISTANT, '{"location": "Paris"}')
            .with_channel("commentary")
            .with_recipient("functions.get_weather")
            .with_content_type("<|constrain|>json"),
        ]
        tokens = enc.render_conversation(
            messages, h.RenderConversationConfig(auto_drop_analysis=False)
        )
        if len(tokens) >= target:
            return tokens[2:]  # the prompt already holds <|start|>assistant


def timed(fn: Callable[[], object], repeat: int) -> float:
    """The median of ``repeat`` runs (the fastest when fewer than three), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) if repeat < 3 else statistics.median(times)


def stream(parser, tokens: list[int]) -> int:
    """Feed every token and read the delta each time, as a streaming server does."""
    read = 0
    for token in tokens:
        parser.process(token)
        if parser.last_content_delta is not None:
            read += 1
    parser.process_eos()
    return read


def per_unit(seconds: float, tokens: int) -> str:
    return f"{seconds * 1e6 / tokens:.2f} µs/tok" if tokens > 1 else f"{seconds * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    repeat = ap.parse_args().repeat
    ours, theirs = h.load_harmony_encoding(), oh.load_harmony_encoding("HarmonyGptOss")
    convo_ours, convo_theirs = conversation(h), conversation(oh)
    assistant, oh_assistant = h.Role.ASSISTANT, oh.Role.ASSISTANT
    rendered = ours.render_conversation_for_completion(convo_ours, assistant)
    assert rendered == theirs.render_conversation_for_completion(convo_theirs, oh_assistant)
    tokens = completion(ours)
    parsed = ours.parse_messages_from_completion_tokens(tokens, assistant, strict=True)
    parsed_theirs = theirs.parse_messages_from_completion_tokens(tokens, oh_assistant)
    assert [m.to_dict() for m in parsed] == [m.to_dict() for m in parsed_theirs]

    n = len(tokens)
    rows = [
        (
            f"render for completion ({len(convo_ours.messages)} msgs, {len(rendered)} tokens)",
            lambda: ours.render_conversation_for_completion(convo_ours, assistant),
            lambda: theirs.render_conversation_for_completion(convo_theirs, oh_assistant),
            1,
        ),
        (
            f"stream-parse {n} tokens, delta each token (ossa tolerant)",
            lambda: stream(h.StreamableParser(ours, assistant, strict=False), tokens),
            lambda: stream(oh.StreamableParser(theirs, oh_assistant), tokens),
            n,
        ),
        (
            f"stream-parse {n} tokens, delta each token (ossa strict)",
            lambda: stream(h.StreamableParser(ours, assistant, strict=True), tokens),
            lambda: stream(oh.StreamableParser(theirs, oh_assistant), tokens),
            n,
        ),
        (
            f"parse_messages_from_completion_tokens ({n} tokens)",
            lambda: ours.parse_messages_from_completion_tokens(tokens, assistant, strict=False),
            lambda: theirs.parse_messages_from_completion_tokens(tokens, oh_assistant),
            n,
        ),
    ]
    print(f"{'case':<66} {'ossa':>12} {'openai-harmony':>15} {'ossa/oh':>8}")
    for name, run_ours, run_theirs, per in rows:
        t_ours, t_theirs = timed(run_ours, repeat), timed(run_theirs, repeat)
        print(
            f"{name:<66} {per_unit(t_ours, per):>12} {per_unit(t_theirs, per):>15}"
            f" {t_ours / t_theirs:>8.2f}"
        )


if __name__ == "__main__":
    main()

"""`ossa harmony render` and `ossa harmony parse`, through typer's CliRunner."""

from __future__ import annotations

import json

import openai_harmony as oh
from typer.testing import CliRunner

from ossa.cli import app

runner = CliRunner()
CONVERSATION = {
    "messages": [
        {"role": "user", "name": None, "content": [{"type": "text", "text": "2+2?"}]},
        {"role": "assistant", "content": "think", "channel": "analysis"},
        {"role": "assistant", "content": "4", "channel": "final"},
    ]
}


def run(args: list[str], stdin: str):
    return runner.invoke(app, ["harmony", *args], input=stdin)


def test_render_modes_match_openai_harmony(oracle):
    payload = json.dumps(CONVERSATION)
    theirs = oh.Conversation.from_json(payload)
    keep = oh.RenderConversationConfig(auto_drop_analysis=False)
    expected = {
        ("--completion", "assistant"): oracle.render_conversation_for_completion(
            theirs, oh.Role.ASSISTANT
        ),
        ("--training",): oracle.render_conversation_for_training(theirs),
        ("--keep-analysis",): oracle.render_conversation(theirs, keep),
        (): oracle.render_conversation(theirs),
    }
    for args, tokens in expected.items():
        result = run(["render", *args], payload)
        assert result.exit_code == 0, result.stderr
        out = json.loads(result.stdout)
        assert out == {"tokens": tokens, "text": oracle.decode(tokens)}


def test_parse_prints_message_json(enc):
    tokens = enc.encode("<|channel|>final<|message|>4<|return|>", allowed_special="all")
    result = run(["parse", "--role", "assistant"], json.dumps(tokens))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "messages": [
            {
                "role": "assistant",
                "name": None,
                "content": [{"type": "text", "text": "4"}],
                "channel": "final",
            }
        ]
    }


def test_strict_parse_of_malformed_output_fails_with_the_error(enc):
    text = "I must refuse<|end|><|start|>assistant<|channel|>final<|message|>x<|end|>"
    tokens = enc.encode(text, allowed_special="all")
    strict = run(["parse", "--role", "assistant", "--strict"], json.dumps(tokens))
    assert strict.exit_code == 1
    assert "unexpected tokens remaining in message header" in strict.stderr
    assert strict.stdout == ""
    tolerant = run(["parse", "--role", "assistant"], json.dumps(tokens))
    assert json.loads(tolerant.stdout)["messages"][0]["content"][0]["text"] == "I must refuse"


def test_jsonl_keeps_going_past_bad_lines(enc):
    good = json.dumps([200006, 1428, 200008, 64, 200007])
    lines = "\n".join(["[1]", good, "not json", '["x"]', good]) + "\n"
    result = run(["parse", "--jsonl", "--strict"], lines)
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == 5 and result.exit_code == 1
    assert outputs[0] == {"error": "Unexpected token 1 while expecting start token 200006"}
    assert outputs[1] == outputs[4] and outputs[1]["messages"][0]["role"] == "user"
    assert outputs[2]["error"].startswith("invalid JSON input")
    assert outputs[3] == {"error": "expected a JSON array of token ids"}


def test_render_jsonl_and_bad_conversation():
    lines = json.dumps(CONVERSATION) + "\n" + '{"messages": [{"role": "robot", "content": []}]}\n'
    result = run(["render", "--jsonl"], lines)
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["text"].startswith("<|start|>user<|message|>2+2?<|end|>")
    assert second == {"error": "Unknown role: 'robot'"}
    single = run(["render"], "{")
    assert single.exit_code == 1 and single.stderr.startswith("error: invalid JSON input")


def test_bad_shapes_are_one_line_never_a_traceback():
    for bad in (
        '{"messages": [{"role": "user", "content": 5}]}',
        '{"messages": [{"role": "nobody", "content": "x"}]}',
        '{"messages": 3}',
        "[]",
    ):
        result = run(["render"], bad)
        assert result.exit_code == 1, bad
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, bad


def test_jsonl_failures_are_counted_on_stderr():
    result = run(["parse", "--jsonl"], '[200006, 173781]\n[1, "x"]\n')
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "error" in json.loads(lines[1])
    assert result.exit_code == 1
    assert result.stderr == "error: 1 input line(s) failed: see their error objects on stdout\n"

"""`ossa harmony`: render conversations to tokens and parse tokens to messages, as JSON.

Both commands read stdin. With ``--jsonl`` each line is one input and gives one output line,
in order; a line that fails gives ``{"error": "..."}`` and the others still run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from ossa import jsontext
from ossa.errors import OssaError
from ossa.harmony.encoding import RenderConversationConfig, load_harmony_encoding
from ossa.harmony.messages import Conversation, Role

app = typer.Typer(no_args_is_help=True, help="Render and parse the harmony format.")

JsonlOption = Annotated[
    bool, typer.Option("--jsonl", help="One input per line; one JSON result per output line.")
]


def _render(completion: Role | None, training: bool, keep_analysis: bool) -> Callable[[str], Any]:
    def run(payload: str) -> dict[str, Any]:
        enc = load_harmony_encoding()
        convo = Conversation.from_json(payload)
        config = RenderConversationConfig(auto_drop_analysis=not keep_analysis)
        if completion is not None:
            tokens = enc.render_conversation_for_completion(convo, completion, config)
        elif training:
            tokens = enc.render_conversation_for_training(convo, config)
        else:
            tokens = enc.render_conversation(convo, config)
        return {"tokens": tokens, "text": enc.decode(tokens)}

    return run


def _parse(role: Role | None, strict: bool) -> Callable[[str], Any]:
    def run(payload: str) -> dict[str, Any]:
        tokens = json.loads(payload)
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            raise ValueError("expected a JSON array of token ids")
        enc = load_harmony_encoding()
        messages = enc.parse_messages_from_completion_tokens(tokens, role, strict=strict)
        return {"messages": [m.to_dict() for m in messages]}

    return run


def _emit(result: Any) -> None:
    sys.stdout.write(jsontext.dumps(result) + "\n")


def _describe(exc: Exception) -> str:
    """One line: pydantic's multi-line report is cut to its first problem."""
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON input: {exc}"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid input at {where or 'top level'}: {first['msg']}"
    return " ".join(str(exc).split())


def _run(handler: Callable[[str], Any], jsonl: bool) -> None:
    """Run one input (an error is one line on stderr, exit 1) or one per line."""
    if not jsonl:
        try:
            result = handler(sys.stdin.read())
        except (ValueError, RuntimeError) as exc:
            raise OssaError(_describe(exc)) from None
        _emit(result)
        return
    failed = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            _emit(handler(line))
        except (ValueError, RuntimeError) as exc:
            failed += 1
            _emit({"error": _describe(exc)})
        sys.stdout.flush()
    if failed:
        raise OssaError(f"{failed} input line(s) failed: see their error objects on stdout")


@app.command()
def render(
    completion: Annotated[
        Role | None,
        typer.Option("--completion", help="Append <|start|>ROLE: a prompt for that role."),
    ] = None,
    training: Annotated[
        bool, typer.Option("--training", help="End a final assistant answer with <|return|>.")
    ] = False,
    keep_analysis: Annotated[
        bool, typer.Option("--keep-analysis", help="Keep analysis messages the format drops.")
    ] = False,
    jsonl: JsonlOption = False,
) -> None:
    """Read a conversation (openai-harmony's JSON) and print {"tokens": [...], "text": "..."}."""
    _run(_render(completion, training, keep_analysis), jsonl)


@app.command()
def parse(
    role: Annotated[
        Role | None,
        typer.Option(
            "--role", help="The role the prompt ended on; omit if tokens start with <|start|>."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on malformed output, as openai-harmony does.")
    ] = False,
    jsonl: JsonlOption = False,
) -> None:
    """Read a JSON array of token ids and print {"messages": [...]}."""
    _run(_parse(role, strict), jsonl)

"""No request body makes the server fail: any JSON is a turn or a 400, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ossa.agent.engines import ReplayEngine
from ossa.agent.settings import Settings
from ossa.serve import APIError, build_state, chat, responses

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
WORDS = st.sampled_from(
    [
        "type",
        "role",
        "content",
        "input",
        "tools",
        "name",
        "call_id",
        "output",
        "function",
        "message",
        "function_call",
        "function_call_output",
        "user",
        "assistant",
        "tool",
        "namespace",
        "custom",
        "reasoning",
        "effort",
        "parameters",
        "tool_calls",
        "text",
        "input_text",
        "code_interpreter_call",
        "outputs",
        "web_search",
        "summary",
        "id",
    ]
)
JSON = st.recursive(
    SCALARS | WORDS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(WORDS, inner, max_size=5),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("fuzz"))
    (path / "r.jsonl").write_text('{"completion": "<|return|>"}\n')
    return build_state(ReplayEngine(path / "r.jsonl"), Settings(tools=["python"]), store=":memory:")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(
        WORDS
        | st.sampled_from(
            ["messages", "reasoning_effort", "previous_response_id", "max_output_tokens", "stream"]
        ),
        JSON,
        max_size=6,
    )
)
def test_any_body_is_parsed_or_refused(state, body):
    for parse in (responses.parse, chat.parse):
        try:
            parse(body, state)
        except APIError as exc:
            assert 400 <= exc.status < 500

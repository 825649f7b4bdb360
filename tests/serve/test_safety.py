"""Bad requests get one OpenAI-shaped 4xx error; the key and the bind address are enforced."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from ossa.cli import main
from ossa.serve import Limits
from ossa.serve.limits import authorized, is_loopback
from tests.serve.test_responses import client


def post(server, path: str, body, headers=None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.base_url}{path}", content=content, headers=headers or {})


def error_of(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        ({"model": "m"}, "input"),
        ({"input": 5}, "input"),
        ({"input": [{"role": "wizard", "content": "hi"}]}, "input[0].role"),
        ({"input": [{"type": "teleport"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
            "input[0].call_id",
        ),
        ({"input": "hi", "tools": [{"type": "warp_drive"}]}, "tools[0].type"),
        ({"input": "hi", "tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
        (
            {
                "input": "hi",
                "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}],
            },
            "tools",
        ),
        ({"input": "hi", "reasoning": {"effort": "maximum"}}, "reasoning.effort"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "temperature": 9}, "temperature"),
        ({"input": "hi", "stream": "yes"}, "stream"),
        ({"input": "hi", "previous_response_id": "resp_missing"}, "previous_response_id"),
    ],
)
def test_bad_responses_requests_are_400s(serve, harmony, body, param):
    server = serve(harmony.final("never used"))
    response = post(server, "/responses", body)
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert server.engine.prompts == []  # nothing ran


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        (
            {"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "retrieval"}]},
            "tools[0]",
        ),
    ],
)
def test_bad_chat_requests_are_400s(serve, harmony, body, param):
    server = serve(harmony.final("never used"))
    response = post(server, "/chat/completions", body)
    assert response.status_code == 400 and error_of(response)["param"] == param


def test_the_sdk_raises_its_typed_error(serve, harmony):
    api = client(serve(harmony.final("never used")))
    with pytest.raises(openai.BadRequestError) as caught:
        api.responses.create(model="m", input="hi", previous_response_id="resp_gone")
    assert caught.value.code == "previous_response_not_found"


def test_limits_on_body_size_and_items(serve, harmony):
    server = serve(harmony.final("never used"), limits=Limits(max_body_bytes=2000, max_items=3))
    big = post(server, "/responses", {"input": "x" * 5000})
    assert big.status_code == 413 and error_of(big)["code"] == "request_too_large"
    many = post(server, "/responses", {"input": [{"role": "user", "content": "a"}] * 4})
    assert many.status_code == 400 and error_of(many)["param"] == "input"


def test_max_output_tokens_is_capped_by_the_server(serve, harmony):
    server = serve(
        harmony.final("A long enough answer to be cut."), limits=Limits(max_output_tokens=5)
    )
    response = client(server).responses.create(model="m", input="Go", max_output_tokens=1000)
    assert response.status == "incomplete" and response.usage.output_tokens == 5
    assert response.max_output_tokens == 5


def test_unknown_routes_and_methods_are_openai_errors(serve, harmony):
    server = serve(harmony.final("never used"))
    missing = httpx.get(f"{server.base_url}/nothing")
    assert missing.status_code == 404 and "Unknown route" in error_of(missing)["message"]
    wrong = httpx.get(f"{server.base_url}/chat/completions")
    assert wrong.status_code == 405 and error_of(wrong)


def test_api_key_is_required_when_set(serve, harmony):
    server = serve(harmony.final("Welcome."), api_key="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = httpx.get(f"{server.base_url}/models", headers=headers)
        assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()
    api = openai.OpenAI(base_url=server.base_url, api_key="s3cret", max_retries=0)
    assert api.responses.create(model="m", input="hi").output_text == "Welcome."


def test_key_check():
    assert authorized("Bearer abc", "abc") and authorized("bearer abc", "abc")
    assert not authorized("Bearer abd", "abc") and not authorized(None, "abc")
    assert not authorized("Basic abc", "abc")


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.com"))


def test_public_bind_without_a_key_is_refused(capsys, monkeypatch):
    monkeypatch.delenv("OSSA_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--host", "0.0.0.0", "--model", "replay:/nonexistent"])
    assert exited.value.code == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in capsys.readouterr().err


def test_serve_takes_only_the_builtin_tools(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--model", "replay:/nonexistent", "--tools", "python,shell"])
    assert exited.value.code == 2
    assert "runs only the built-in tools (browser, python), not shell" in capsys.readouterr().err

"""Fixtures for the harmony tests: ossa's encoding, the openai-harmony oracle, comparisons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai_harmony as oh
import pytest

from ossa import harmony as h

Outcome = tuple[str, Any]


def outcome(fn: Callable[[], Any]) -> Outcome:
    """("ok", value) or ("error", text), so two libraries' failures compare like results."""
    try:
        return "ok", fn()
    except Exception as exc:  # both raise RuntimeError subclasses or ValueError
        return "error", str(exc)


@pytest.fixture(scope="session")
def enc() -> h.HarmonyEncoding:
    return h.load_harmony_encoding()


@pytest.fixture(scope="session")
def oracle() -> oh.HarmonyEncoding:
    # tests/conftest.py points TIKTOKEN_ENCODINGS_BASE at the shipped vocabulary.
    return oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)


@pytest.fixture(scope="session")
def parse_both(enc, oracle) -> Callable[..., tuple[Outcome, Outcome]]:
    """Parse tokens with ossa (strict unless told) and openai-harmony (strict)."""

    def run(tokens: list[int], role: h.Role | None, strict: bool = True):
        ours = outcome(
            lambda: [
                m.to_dict()
                for m in enc.parse_messages_from_completion_tokens(tokens, role, strict=strict)
            ]
        )
        oh_role = None if role is None else oh.Role(role.value)
        theirs = outcome(
            lambda: [
                m.to_dict()
                for m in oracle.parse_messages_from_completion_tokens(tokens, oh_role, strict=True)
            ]
        )
        return ours, theirs

    return run


@pytest.fixture(scope="session")
def render_both(enc, oracle) -> Callable[..., tuple[Outcome, Outcome]]:
    """Render a conversation in one mode with ossa and with openai-harmony (via its JSON)."""

    def run(
        convo: h.Conversation,
        mode: str,
        keep_analysis: bool = False,
        theirs_convo: oh.Conversation | None = None,
    ):
        if theirs_convo is None:  # JSON fills None fields with defaults: pass both for those
            theirs_convo = oh.Conversation.from_json(convo.to_json())
        ours_cfg = h.RenderConversationConfig(auto_drop_analysis=not keep_analysis)
        theirs_cfg = oh.RenderConversationConfig(auto_drop_analysis=not keep_analysis)
        if mode == "completion":
            return (
                outcome(
                    lambda: enc.render_conversation_for_completion(
                        convo, h.Role.ASSISTANT, ours_cfg
                    )
                ),
                outcome(
                    lambda: oracle.render_conversation_for_completion(
                        theirs_convo, oh.Role.ASSISTANT, theirs_cfg
                    )
                ),
            )
        if mode == "training":
            return (
                outcome(lambda: enc.render_conversation_for_training(convo, ours_cfg)),
                outcome(lambda: oracle.render_conversation_for_training(theirs_convo, theirs_cfg)),
            )
        return (
            outcome(lambda: enc.render_conversation(convo, ours_cfg)),
            outcome(lambda: oracle.render_conversation(theirs_convo, theirs_cfg)),
        )

    return run


def _snapshot(parser) -> tuple:
    return (
        None if parser.current_role is None else parser.current_role.value,
        parser.current_channel,
        parser.current_recipient,
        parser.current_content_type,
        parser.current_content,
        parser.last_content_delta,
        parser.state.value,
        parser.state_data,
        [m.to_dict() for m in parser.messages],
        list(parser.tokens),
    )


@pytest.fixture(scope="session")
def stream_both(enc, oracle) -> Callable[..., None]:
    """Feed ossa and openai-harmony (strict) token by token; every getter and error must agree."""

    def run(tokens: list[int], role: h.Role | None, strict: bool = True) -> None:
        ours = h.StreamableParser(enc, role, strict=strict)
        theirs = oh.StreamableParser(
            oracle, None if role is None else oh.Role(role.value), strict=True
        )
        for token in [*tokens, None]:
            errors = []
            for parser in (ours, theirs):
                try:
                    parser.process_eos() if token is None else parser.process(token)
                    errors.append(None)
                except Exception as exc:
                    errors.append(str(exc))
            assert errors[0] == errors[1]
            assert _snapshot(ours) == _snapshot(theirs)
            if errors[0] is not None:
                return

    return run

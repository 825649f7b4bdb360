"""ossa.harmony is a drop-in for openai-harmony: its public API, read off the installed library.

Each test introspects ``openai_harmony`` at test time (names, enums, signatures, pydantic
fields), so a new release that changes the API shows up here as a failure. The few places
where ossa deliberately offers more are listed in ``EXTENSIONS`` with the reason.
"""

from __future__ import annotations

import enum
import inspect
from typing import Any, TypeVar

import openai_harmony as oh
import pydantic
import pytest

from ossa import harmony as h

# (class or None for the module, attribute) -> why ossa's signature differs on purpose.
EXTENSIONS = {
    (None, "load_harmony_encoding"): "ossa defaults the name to the only encoding there is",
    ("HarmonyEncoding", "__init__"): "built from ossa's tokenizer, not from the Rust object",
    ("Message", "incomplete"): "a note of the tolerant parser: out of model_dump and equality",
    ("Message", "header_rest"): "the header words it could not place: likewise",
}


def _public_names() -> list[str]:
    """What openai_harmony itself defines (not what it imports), TypeVars aside."""
    return sorted(
        name
        for name, obj in vars(oh).items()
        if not name.startswith("_")
        and getattr(obj, "__module__", None) == "openai_harmony"
        and not isinstance(obj, TypeVar)
    )


PUBLIC = _public_names()
CLASSES = [n for n in PUBLIC if inspect.isclass(getattr(oh, n))]
FUNCTIONS = [n for n in PUBLIC if inspect.isfunction(getattr(oh, n))]
ENUMS = [n for n in CLASSES if issubclass(getattr(oh, n), enum.Enum)]
MODELS = [n for n in CLASSES if issubclass(getattr(oh, n), pydantic.BaseModel)]


def test_the_oracle_is_the_release_this_mirrors():
    assert "HarmonyEncodingName" in PUBLIC and len(PUBLIC) >= 20


def test_every_public_name_exists():
    missing = [n for n in PUBLIC if not hasattr(h, n)]
    assert missing == []
    assert set(oh.__all__) <= set(h.__all__)


@pytest.mark.parametrize("name", ENUMS)
def test_enum_members_and_values(name):
    theirs, ours = getattr(oh, name), getattr(h, name)
    assert issubclass(ours, enum.Enum)
    assert [(m.name, m.value) for m in theirs] == [(m.name, m.value) for m in ours]
    assert [b for b in theirs.__mro__ if b in (str, int)] == [
        b for b in ours.__mro__ if b in (str, int)
    ]
    assert [str(m) for m in theirs] == [str(m) for m in ours]


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    """Names, kinds and defaults; annotations differ in spelling only (Optional[x] vs x | None)."""
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if (None, n) not in EXTENSIONS])
def test_function_signatures(name):
    assert _params(getattr(h, name)) == _params(getattr(oh, name))


def test_load_harmony_encoding_takes_the_same_name_argument():
    """The one extension: the name has a default; its position and kind are openai-harmony's."""
    theirs = _params(oh.load_harmony_encoding)
    ours = _params(h.load_harmony_encoding)
    assert [p[:2] for p in ours] == [p[:2] for p in theirs]


def _own_members(cls: type) -> dict[str, Any]:
    """The class's own public members (and the dunders a caller uses), as declared."""
    out = {}
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__iter__", "__str__"):
            continue
        if name == "__init__" and issubclass(cls, pydantic.BaseModel):
            continue  # pydantic's: compared through the fields below
        if name.startswith("model_") or name in ("Config",):
            continue
        out[name] = value
    return out


def _kind(value: Any) -> str:
    if isinstance(value, (property, __import__("functools").cached_property)):
        return "property"
    return type(value).__name__  # function, classmethod, staticmethod


@pytest.mark.parametrize("name", [n for n in CLASSES if not issubclass(getattr(oh, n), enum.Enum)])
def test_class_members_and_signatures(name, enc):
    theirs, ours = getattr(oh, name), getattr(h, name)
    assert inspect.isclass(ours)
    instance = {"HarmonyEncoding": enc, "StreamableParser": h.StreamableParser(enc, None)}.get(name)
    for member, value in _own_members(theirs).items():
        if _kind(value) == "property":  # a property there may be a plain attribute here
            assert instance is not None and hasattr(instance, member), member
            continue
        assert hasattr(ours, member), f"{name}.{member}"
        if (name, member) in EXTENSIONS:
            continue
        mine = inspect.getattr_static(ours, member)
        assert _kind(mine) == _kind(value), f"{name}.{member}"
        assert _params(getattr(ours, member)) == _params(getattr(theirs, member)), member


@pytest.mark.parametrize("name", CLASSES)
def test_class_hierarchy(name):
    theirs, ours = getattr(oh, name), getattr(h, name)
    for other in CLASSES:
        if issubclass(theirs, getattr(oh, other)):
            assert issubclass(ours, getattr(h, other)), f"{name} < {other}"
    assert issubclass(ours, pydantic.BaseModel) == issubclass(theirs, pydantic.BaseModel)
    for base in (Exception, RuntimeError, ValueError):
        assert issubclass(ours, base) == issubclass(theirs, base)


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


@pytest.mark.parametrize("name", MODELS)
def test_pydantic_fields_and_defaults(name):
    theirs, ours = getattr(oh, name).model_fields, getattr(h, name).model_fields
    extra = [f for f in ours if f not in theirs]
    assert list(ours) == list(theirs) + extra
    for field in extra:
        assert (name, field) in EXTENSIONS and ours[field].exclude and not ours[field].is_required()
    for field, info in theirs.items():
        mine = ours[field]
        assert mine.is_required() == info.is_required(), field
        if not info.is_required():
            default = _default(info)
            if isinstance(default, pydantic.BaseModel):  # a model of the other library
                assert _default(mine).model_dump() == default.model_dump()
            else:
                assert _default(mine) == default, field


# -- defaults and exceptions, side by side ------------------------------------------------

MALFORMED = "I must refuse<|end|><|start|>assistant<|channel|>final<|message|>ok<|end|>"


def _raised(fn: Any) -> tuple[type, str] | None:
    try:
        fn()
    except Exception as exc:
        return type(exc), str(exc)
    return None


def _same_error(ours: Any, theirs: Any, *, kind: type) -> None:
    """Both raise, the same text, and ours is (a subclass of) the same exception type."""
    mine, other = _raised(ours), _raised(theirs)
    assert mine is not None and other is not None
    assert issubclass(other[0], kind)
    assert issubclass(mine[0], h.HarmonyError if other[0] is oh.HarmonyError else other[0])
    assert mine[1] == other[1]


def test_parsing_is_strict_by_default(enc, oracle):
    tokens = enc.encode(MALFORMED, allowed_special="all")
    _same_error(
        lambda: enc.parse_messages_from_completion_tokens(tokens, h.Role.ASSISTANT),
        lambda: oracle.parse_messages_from_completion_tokens(tokens, oh.Role.ASSISTANT),
        kind=RuntimeError,
    )

    def feed(parser):
        for token in tokens:
            parser.process(token)

    _same_error(
        lambda: feed(h.StreamableParser(enc, h.Role.ASSISTANT)),
        lambda: feed(oh.StreamableParser(oracle, oh.Role.ASSISTANT)),
        kind=RuntimeError,
    )


def test_strict_false_is_the_tolerant_parser(enc):
    parser = h.StreamableParser(enc, h.Role.ASSISTANT, strict=False)
    assert isinstance(parser, h.StreamableParser) and isinstance(parser, h.TolerantParser)
    assert not parser.strict and h.StreamableParser(enc, h.Role.ASSISTANT).strict
    for token in enc.encode(MALFORMED, allowed_special="all"):
        parser.process(token)
    assert [m.text for m in parser.process_eos().messages] == ["I must refuse", "ok"]


def test_conversation_from_messages_raises_pydantics_validation_error():
    for lib in (h, oh):
        with pytest.raises(pydantic.ValidationError):
            lib.Conversation.from_messages(["not a message"])


def test_unknown_encoding_name(oracle):
    _same_error(
        lambda: h.load_harmony_encoding("nope"),
        lambda: oh.load_harmony_encoding("nope"),
        kind=ValueError,
    )
    assert h.load_harmony_encoding(h.HarmonyEncodingName.HARMONY_GPT_OSS).name == oracle.name
    assert h.load_harmony_encoding("HarmonyGptOss") is h.load_harmony_encoding()


@pytest.mark.parametrize(
    "call, kind",
    [
        (lambda e: e.decode([64, 201089]), RuntimeError),
        (lambda e: e.decode_utf8([64, 201089]), RuntimeError),
        (lambda e: e.decode([64, -1]), OverflowError),
        (lambda e: e.decode([2**32]), OverflowError),
        (lambda e: e.is_special_token(-1), OverflowError),
        (lambda e: e.encode("a<|end|>"), RuntimeError),
        (lambda e: e.encode("<|end|>", allowed_special={"<|start|>"}), RuntimeError),
    ],
)
def test_token_errors(enc, oracle, call, kind):
    _same_error(lambda: call(enc), lambda: call(oracle), kind=kind)


@pytest.mark.parametrize("bad", [-1, 2**32])
@pytest.mark.parametrize("role", ["assistant", None])
def test_parser_refuses_ids_that_are_not_u32_before_recording_them(enc, oracle, bad, role):
    for lib, encoding in ((h, enc), (oh, oracle)):
        for strict in (True, False):
            parser = lib.StreamableParser(
                encoding, None if role is None else lib.Role(role), strict=strict
            )
            with pytest.raises(OverflowError):
                parser.process(bad)
            assert parser.tokens == []


def test_render_errors(enc, oracle):
    nameless_tool = [("tool", "x")]

    def convo(lib):
        return lib.Conversation.from_messages(
            [lib.Message.from_role_and_content(lib.Role(r), t) for r, t in nameless_tool]
        )

    _same_error(
        lambda: enc.render_conversation(convo(h)),
        lambda: oracle.render_conversation(convo(oh)),
        kind=RuntimeError,
    )
    _same_error(
        lambda: enc.render_conversation_for_completion(convo(h), h.Role.USER),
        lambda: oracle.render_conversation_for_completion(convo(oh), oh.Role.USER),
        kind=RuntimeError,
    )
    _same_error(lambda: h.Role("robot"), lambda: oh.Role("robot"), kind=ValueError)


def test_encoding_values(enc, oracle):
    assert enc.name == oracle.name
    assert type(enc.special_tokens_set) is type(oracle.special_tokens_set)
    assert enc.special_tokens_set == oracle.special_tokens_set
    # Rust HashSets there: the order changes from run to run.
    assert sorted(enc.stop_tokens()) == sorted(oracle.stop_tokens())
    actions = enc.stop_tokens_for_assistant_actions()
    assert sorted(actions) == sorted(oracle.stop_tokens_for_assistant_actions())
    text = "hi <|start|> there"
    assert enc.encode(text, allowed_special="all") == oracle.encode(text, allowed_special="all")
    assert enc.encode(text, disallowed_special=()) == oracle.encode(text, disallowed_special=())


def test_default_objects_dump_alike():
    for name in ("SystemContent", "DeveloperContent", "RenderConversationConfig", "RenderOptions"):
        assert getattr(h, name)().model_dump() == getattr(oh, name)().model_dump()
    assert h.SystemContent.new().to_dict() == oh.SystemContent.new().to_dict()
    assert h.Message.from_role_and_content(h.Role.USER, "hi").model_dump(
        mode="json"
    ) == oh.Message.from_role_and_content(oh.Role.USER, "hi").model_dump(mode="json")

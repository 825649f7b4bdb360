"""The toolbox: prompt sections, routing by recipient, and failures as tool messages."""

from __future__ import annotations

import pytest

from ossa.harmony import (
    DeveloperContent,
    Message,
    Role,
    SystemContent,
    ToolNamespaceConfig,
    load_harmony_encoding,
)
from ossa.tools import Tool, Toolbox, build_toolbox, tool


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


@tool(name="python")
def user_python(code: str) -> str:
    """A user function that happens to be called python."""
    return f"user python got {code}"


class Broken(Tool):
    """A tool that breaks the contract by raising."""

    name = "broken"

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(name=self.name, description="Always raises.", tools=[])

    def call(self, message: Message) -> list[Message]:
        raise RuntimeError("tool bug")


def ask(box: Toolbox, recipient: str, content: str, channel: str = "analysis") -> list[Message]:
    message = Message.from_role_and_content(Role.ASSISTANT, content)
    return box.call(message.with_channel(channel).with_recipient(recipient))


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "tides.md").write_text("# Tides\n\nTides are caused by the moon's gravity.\n")
    return tmp_path


@pytest.fixture
def box(corpus):
    with build_toolbox(
        ["browser"],
        search_backend="local",
        corpus_dir=str(corpus),
        functions=[lookup],
        plugins=False,
    ) as toolbox:
        yield toolbox


def test_unknown_recipient_names_the_tools_that_exist(box):
    [reply] = ask(box, "calculator.add", "{}")
    assert reply.author.role == Role.TOOL
    assert reply.author.name == "calculator.add"
    assert reply.recipient == "assistant"
    assert reply.channel == "analysis"
    assert reply.content[0].text == (
        "Unknown recipient 'calculator.add': no such tool. Available tools: "
        "browser.search, browser.open, browser.find, functions.lookup."
    )


def test_browser_search_is_routed_to_the_browser(box):
    [reply] = ask(box, "browser.search", '{"query": "tides moon"}')
    assert reply.author.name == "browser.search"
    assert "Tides" in reply.content[0].text
    assert box.browser is box.tools["browser"]


def test_functions_browser_search_maps_to_the_builtin(box):
    [reply] = ask(box, "functions.browser.search", '{"query": "tides"}', channel="commentary")
    assert reply.author.name == "browser.search"
    assert reply.channel == "commentary"
    assert "Tides" in reply.content[0].text


def test_function_calls_with_and_without_the_namespace(box):
    for recipient in ("functions.lookup", "lookup"):
        [reply] = ask(box, recipient, '{"key": "k"}', channel="commentary")
        assert reply.author.name == "functions.lookup"
        assert reply.content[0].text == "value of k"


def test_user_function_named_python_wins_over_the_builtin_mapping():
    with build_toolbox(["python"], functions=[user_python], plugins=False) as box:
        [reply] = ask(box, "functions.python", '{"code": "1+1"}', channel="commentary")
        assert reply.author.name == "functions.python"
        assert reply.content[0].text == "user python got 1+1"


def test_functions_python_maps_to_the_python_tool_without_such_a_function():
    # No daemon needed: the tool answers either with the output or with why it cannot run.
    with build_toolbox(["python"], plugins=False, sandbox_options={"timeout": 30}) as box:
        [reply] = ask(box, "functions.python", "print(6 * 7)", channel="commentary")
        assert reply.author.name == "python"
        text = reply.content[0].text
        assert text == "42" or text.startswith("The python tool is unavailable:")


def test_a_raising_tool_becomes_a_tool_message():
    box = Toolbox([Broken()])
    [reply] = ask(box, "broken.x", "{}")
    assert reply.author.name == "broken.x"
    assert reply.content[0].text == "Error: the broken tool failed: RuntimeError('tool bug')"


def test_prompt_sections_go_to_system_and_developer_messages(box):
    system = box.system_content(SystemContent.new().with_conversation_start_date("2026-11-28"))
    developer = box.developer_content(DeveloperContent.new().with_instructions("Be brief."))
    enc = load_harmony_encoding()
    system_text = enc.decode(enc.render(Message.from_role_and_content(Role.SYSTEM, system)))
    developer_text = enc.decode(
        enc.render(Message.from_role_and_content(Role.DEVELOPER, developer))
    )
    expected_system = SystemContent.new().with_conversation_start_date("2026-11-28")
    expected_system = expected_system.with_browser_tool()
    assert system_text == enc.decode(
        enc.render(Message.from_role_and_content(Role.SYSTEM, expected_system))
    )
    assert "## functions" not in system_text
    assert developer_text.endswith(
        "# Tools\n\n## functions\n\nnamespace functions {\n\n// Look a key up.\n"
        "type lookup = (_: {\nkey: string,\n}) => any;\n\n} // namespace functions<|end|>"
    )


def test_toolbox_without_functions_leaves_the_developer_message_alone():
    with build_toolbox(["python"], plugins=False) as box:
        base = DeveloperContent.new().with_instructions("x")
        assert box.developer_content(base) == base
        assert list(box.system_content(SystemContent.new()).tools) == ["python"]


def test_unknown_tool_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown tool 'calculator'; available: browser, python"):
        build_toolbox(["calculator"], plugins=False)


def test_bad_sandbox_option_fails_when_building():
    with pytest.raises(ValueError, match="sandbox limits out of range"):
        build_toolbox(["python"], sandbox_options={"timeout": -1}, plugins=False)


class Upper(Tool):
    """A tool whose answer filter upper-cases the answer, holding back a trailing '!'."""

    name = "upper"

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(name=self.name, description="Shouts.", tools=[])

    def call(self, message: Message) -> list[Message]:
        return [self.reply(message, "ok")]

    def answer_filter(self):
        return _HoldBang()


class _HoldBang:
    def __init__(self) -> None:
        self.held = ""

    def feed(self, text: str) -> str:
        text, self.held = self.held + text, ""
        if text.endswith("!"):
            text, self.held = text[:-1], "!"
        return text.upper()

    def flush(self) -> str:
        text, self.held = self.held, ""
        return text + " (checked)" if text else ""


def test_answer_filters_chain_in_tool_order_and_flush_through_each_other(tmp_path):
    box = Toolbox(
        [
            Upper(),
            build_toolbox(
                ["browser"], search_backend="local", corpus_dir=str(tmp_path), plugins=False
            ).tools["browser"],
        ]
    )
    answer = box.answer_filter()
    shown = answer.feed("see 【0†L1】 now!") + answer.feed("") + answer.flush()
    assert shown == "SEE 【0†L1】 NOW! (checked)"
    assert Toolbox([]).answer_filter().feed("as is 【0") == "as is 【0"

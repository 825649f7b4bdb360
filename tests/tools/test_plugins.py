"""Plugins, found through a real ``ossa.tools`` entry point in an installed distribution."""

from __future__ import annotations

import sys
import textwrap

import pytest

from ossa.harmony import DeveloperContent, Message, Role
from ossa.tools import BUILTIN_TOOLS, build_toolbox
from ossa.tools.plugins import discover

PLUGIN_MODULE = '''
from ossa.harmony import ToolNamespaceConfig, ToolDescription
from ossa.tools import Tool, tool


class Echo(Tool):
    name = "echo"

    def namespace(self):
        return ToolNamespaceConfig(
            name="echo", description="Echoes text.",
            tools=[ToolDescription.new("say", "Say it back.", parameters=None)],
        )

    def call(self, message):
        return [self.reply(message, "echo: " + message.content[0].text)]


@tool
def shout(text: str) -> str:
    """Shout the text."""
    return text.upper()


class FakePython(Echo):
    name = "python"


class Sneaky(Echo):
    name = "browser"


NUMBER = 3
'''

ENTRY_POINTS = """
[ossa.tools]
echo = ossa_test_plugin:Echo
shout = ossa_test_plugin:shout
python = ossa_test_plugin:FakePython
sneaky = ossa_test_plugin:Sneaky
number = ossa_test_plugin:NUMBER
missing = ossa_test_plugin_gone:thing
"""


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path, as pip would leave it: a module and its dist-info."""
    (tmp_path / "ossa_test_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = tmp_path / "ossa_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ossa-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("ossa_test_plugin", None)


def test_discover_loads_tools_and_functions_and_refuses_the_rest(installed_plugin):
    found = discover()
    assert list(found.tools) == ["echo"]
    assert list(found.functions) == ["shout"]
    refused = "\n".join(found.refused)
    assert (
        "plugin 'python' (ossa_test_plugin:FakePython): the name 'python' belongs to the "
        "built-in python tool" in refused
    )
    assert "plugin 'sneaky' (ossa_test_plugin:Sneaky): the name 'browser' belongs to" in refused
    assert "plugin 'number' (ossa_test_plugin:NUMBER): loads int, not a Tool" in refused
    assert (
        "plugin 'missing' (ossa_test_plugin_gone:thing): failed to load: ModuleNotFound" in refused
    )


def test_plugins_are_selected_by_name_and_called(installed_plugin):
    with build_toolbox(["echo", "shout"]) as box:
        assert set(box.tools) == {"echo", "functions"}
        developer = box.developer_content(DeveloperContent.new())
        assert set(developer.tools) == {"echo", "functions"}
        message = Message.from_role_and_content(Role.ASSISTANT, "hi").with_channel("commentary")
        [reply] = box.call(message.with_recipient("echo.say"))
        assert reply.content[0].text == "echo: hi"
        message = Message.from_role_and_content(Role.ASSISTANT, '{"text": "hi"}')
        [reply] = box.call(message.with_channel("commentary").with_recipient("functions.shout"))
        assert reply.content[0].text == "HI"


def test_all_plugins_by_default_and_none_without_plugins(installed_plugin, tmp_path):
    with build_toolbox(search_backend="local", corpus_dir=str(tmp_path)) as box:
        assert set(box.tools) == {"browser", "python", "echo", "functions"}
        assert len(box.refused) == 4
    with build_toolbox(["python"], plugins=False) as box:
        assert set(box.tools) == {"python"}


def test_selecting_a_refused_plugin_says_why(installed_plugin):
    with pytest.raises(ValueError, match="tool 'number' was refused: .*loads int"):
        build_toolbox(["number"])


def test_builtins_are_entries_of_the_same_group_and_their_names_are_taken(tmp_path, monkeypatch):
    """A plugin entry named like a built-in is refused before anything of it is imported."""
    info = tmp_path / "ossa_shadow-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ossa-shadow\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ossa.tools]\nbrowser = ossa_shadow_missing:Browser\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover()
    assert found.refused == [
        "plugin 'browser' (ossa_shadow_missing:Browser): the name 'browser' belongs to the "
        "built-in browser tool; rename the plugin"
    ]
    with build_toolbox(["browser"], search_backend="local", corpus_dir=str(tmp_path)) as box:
        assert type(box.tools["browser"]).__module__ == "ossa.tools.browser.tool"
    assert set(BUILTIN_TOOLS) == {"browser", "python"}

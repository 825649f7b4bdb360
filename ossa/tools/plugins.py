"""Tools by name: the built-ins and installed plugins, loaded through one path.

The ``ossa.tools`` entry-point group names a :class:`Tool` subclass, a Tool instance or an
``@ossa.tool`` function; the entry point's name is what ``build_toolbox`` and ``ossa tools``
select it by. The built-in ``browser`` and ``python`` are entries of the same group, listed
in :data:`BUILTIN_TOOLS` (see :mod:`ossa.registry`) and loaded by the same :func:`load`, with
the options the toolbox was given. A plugin that fails to load, or whose name would shadow a
built-in (which the model reaches by that name whatever the namespace), is refused with a
message saying why, and the other plugins still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any

from ossa import registry
from ossa.tools.base import Tool
from ossa.tools.functions import FunctionTool

GROUP = "ossa.tools"
#: The built-in tools: the one list of their names (gpt-oss was trained to call them).
BUILTIN_TOOLS = {
    "browser": "ossa.tools.browser:BrowserTool",
    "python": "ossa.tools.python_tool:PythonTool",
}


class NotATool(TypeError):
    """An entry point that loads something other than a tool."""


@dataclass
class Plugins:
    """What the installed plugins provide, by entry-point name, and what was refused."""

    tools: dict[str, Tool] = field(default_factory=dict)
    functions: dict[str, FunctionTool] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def builtin(name: str, **options: Any) -> Tool:
    """The built-in tool ``name``, made with ``options`` (imported only now: ddgs, docker)."""
    tool = load(EntryPoint(name, BUILTIN_TOOLS[name], GROUP), **options)
    assert isinstance(tool, Tool)
    return tool


def load(ep: EntryPoint, **options: Any) -> Tool | FunctionTool:
    """What an entry point provides: a Tool class is instantiated with ``options``."""
    obj = ep.load()
    if isinstance(obj, type) and issubclass(obj, Tool):
        obj = obj(**options)
    if not isinstance(obj, (Tool, FunctionTool)):
        raise NotATool(f"loads {type(obj).__name__}, not a Tool or an @ossa.tool function")
    return obj


def discover() -> Plugins:
    """Load every installed plugin of the ``ossa.tools`` group (the built-ins load on use)."""
    found = registry.find(GROUP, BUILTIN_TOOLS)
    plugins = Plugins(refused=list(found.refused))
    for name, ep in found.entries.items():
        if name in found.builtins:
            continue
        where = f"plugin {name!r} ({ep.value})"
        try:
            obj = load(ep)
        except NotATool as exc:
            plugins.refused.append(f"{where}: {exc}")
            continue
        except Exception as exc:
            plugins.refused.append(f"{where}: failed to load: {type(exc).__name__}: {exc}")
            continue
        if obj.name in BUILTIN_TOOLS:
            plugins.refused.append(
                f"{where}: the name {obj.name!r} belongs to the built-in {obj.name} tool; "
                "rename the plugin (the model calls the built-in by that name)"
            )
        elif isinstance(obj, Tool):
            plugins.tools[name] = obj
        else:
            plugins.functions[name] = obj
    return plugins

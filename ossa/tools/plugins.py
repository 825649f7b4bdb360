"""Tool plugins: installed packages add tools through the ``ossa.tools`` entry-point group.

An entry point loads a :class:`Tool` subclass (instantiated with no arguments), a Tool
instance, or an ``@ossa.tool`` function. The entry point's name is what ``build_toolbox``
and ``ossa tools`` select it by. A plugin that fails to load, or whose name would shadow the
built-in ``browser`` or ``python`` (which the model reaches by those names whatever the
namespace), is refused with a message saying why, and the other plugins still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from ossa.tools.base import Tool
from ossa.tools.functions import FunctionTool

GROUP = "ossa.tools"
BUILTIN_NAMES = frozenset({"browser", "python"})


@dataclass
class Plugins:
    """What the installed plugins provide, by entry-point name, and what was refused."""

    tools: dict[str, Tool] = field(default_factory=dict)
    functions: dict[str, FunctionTool] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def discover() -> Plugins:
    """Load every entry point in the ``ossa.tools`` group."""
    found = Plugins()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        where = f"plugin {ep.name!r} ({ep.value})"
        if ep.name in found.tools or ep.name in found.functions:
            found.refused.append(f"{where}: another plugin already uses the name {ep.name!r}")
            continue
        try:
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Tool):
                obj = obj()
        except Exception as exc:
            found.refused.append(f"{where}: failed to load: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(obj, (Tool, FunctionTool)):
            found.refused.append(
                f"{where}: loads {type(obj).__name__}, not a Tool or an @ossa.tool function"
            )
            continue
        if clash := sorted({ep.name, obj.name} & BUILTIN_NAMES):
            found.refused.append(
                f"{where}: the name {clash[0]!r} belongs to the built-in {clash[0]} tool; "
                "rename the plugin (the model calls the built-in by that name)"
            )
            continue
        if isinstance(obj, Tool):
            found.tools[ep.name] = obj
        else:
            found.functions[ep.name] = obj
    return found

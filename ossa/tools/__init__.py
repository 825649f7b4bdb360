"""The agent's tools: the toolbox, the built-in python tool, function tools, plugins and MCP.

The browser lives in :mod:`ossa.tools.browser`; :func:`build_toolbox` assembles any mix of
the built-ins (:data:`BUILTIN_TOOLS`), installed plugins, functions and MCP servers.
"""

from ossa.tools.base import AnswerFilter, Tool
from ossa.tools.functions import FunctionTool, tool
from ossa.tools.plugins import BUILTIN_TOOLS
from ossa.tools.toolbox import Toolbox, build_toolbox

__all__ = [
    "BUILTIN_TOOLS",
    "AnswerFilter",
    "FunctionTool",
    "Tool",
    "Toolbox",
    "build_toolbox",
    "tool",
]

"""ossa: run gpt-oss as a tool-using agent (harmony, a packed-MXFP4 engine, browser, sandboxed python)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``ossa.tool`` without making ``import ossa`` load the tools stack."""
    if name == "tool":
        from ossa.tools.functions import tool

        return tool
    raise AttributeError(f"module 'ossa' has no attribute {name!r}")

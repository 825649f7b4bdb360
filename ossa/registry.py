"""Named implementations: ossa's built-ins and installed plugins, found and loaded one way.

Engines (group ``ossa.engines``, by model-spec scheme) and tools (group ``ossa.tools``) are
both registries of ``name -> "module:attribute"``. ossa's own entries are listed in code, as
:class:`~importlib.metadata.EntryPoint` objects built from one table per group, so they work
from a source checkout whose installed metadata is older than the code; installed packages
add theirs through entry points. Both kinds are loaded by the same ``EntryPoint.load``, so a
built-in is no different from a plugin except that its name cannot be taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

__all__ = ["Found", "find"]


@dataclass
class Found:
    """A group's entries by name (built-ins first) and the plugins refused, with why."""

    entries: dict[str, EntryPoint] = field(default_factory=dict)
    builtins: frozenset[str] = frozenset()
    refused: list[str] = field(default_factory=list)


def find(group: str, builtins: Mapping[str, str], *, plugins: bool = True) -> Found:
    """The built-in entries of ``group``, then its installed entry points (when ``plugins``).

    Nothing is imported here: callers load the entries they use. A plugin whose name is a
    built-in's or another plugin's is refused rather than shadowing it.
    """
    found = Found(
        {name: EntryPoint(name, value, group) for name, value in builtins.items()},
        frozenset(builtins),
    )
    if not plugins:
        return found
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        where = f"plugin {ep.name!r} ({ep.value})"
        if ep.name in found.builtins:
            found.refused.append(
                f"{where}: the name {ep.name!r} belongs to the built-in {ep.name} "
                f"{_KIND.get(group, 'entry')}; rename the plugin"
            )
        elif ep.name in found.entries:
            found.refused.append(f"{where}: another plugin already uses the name {ep.name!r}")
        else:
            found.entries[ep.name] = ep
    return found


_KIND = {"ossa.tools": "tool", "ossa.engines": "engine"}

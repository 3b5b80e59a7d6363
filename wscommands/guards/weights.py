"""How many bytes a value holds, approximately: what budgets charge for arguments and timers."""

from __future__ import annotations

import functools
import types
from typing import Any

#: What :func:`weigh` counts for an object it does not look into (the connection, a model).
OPAQUE_SIZE = 64
_CONTAINERS = (list, tuple, set, frozenset)


def weigh(*objects: Any, stop: int | None = None) -> int:
    """Approximate bytes held by ``objects``: text, bytes and containers, recursively.

    Functions count what their closures and defaults hold, partials their arguments; any
    other object counts :data:`OPAQUE_SIZE` (it is usually shared, like the connection).
    The walk ends early once the total passes ``stop``.
    """
    total = 0
    seen: set[int] = set()
    stack = list(objects)
    while stack and (stop is None or total <= stop):
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes, bytearray)):
            total += len(obj) + 50
        elif isinstance(obj, dict):
            total += 64 + 16 * len(obj)
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, _CONTAINERS):
            total += 56 + 8 * len(obj)
            stack.extend(obj)
        elif isinstance(obj, types.FunctionType):
            total += OPAQUE_SIZE
            stack.extend(cell.cell_contents for cell in obj.__closure__ or () if _full(cell))
            stack.extend(obj.__defaults__ or ())
            stack.extend((obj.__kwdefaults__ or {}).values())
        elif isinstance(obj, functools.partial):
            total += OPAQUE_SIZE
            stack.extend((obj.func, *obj.args, *obj.keywords.values()))
        elif isinstance(obj, types.MethodType):
            total += OPAQUE_SIZE
            stack.append(obj.__func__)
        else:
            total += OPAQUE_SIZE
    return total


def _full(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises)
    except ValueError:
        return False
    return True

"""Presence changes merged into one diff per group and interval (pure bookkeeping, no I/O).

A diff is what watchers receive (docs/scaling.md, "Presence")::

    {"presence_diff": {"group": "lobby" | null,
                       "joins": {"<user id>": {"user_id": 7, "username": "ann",
                                               "connections": ["<connection id>", ...]}},
                       "leaves": {"<user id>": {"user_id": 7, "username": "ann",
                                                "connections": [...]}},
                       "guests": {"<process>": 12}}}

Signed-in connections are listed, grouped by user (as Phoenix Presence's metas). Anonymous
connections are only counted, per process, as an absolute number: a thousand anonymous
connects within one interval make one small diff, and a lost diff is corrected by the next
one from the same process. A connection that joins and leaves within one interval is never
announced.
"""

from __future__ import annotations

from typing import Any


def user_key(user_id: Any) -> str:
    """The key of a user in diffs and states (JSON object keys are strings)."""
    return str(user_id)


class _Diff:
    def __init__(self) -> None:
        self.joins: dict[str, dict[str, Any]] = {}
        self.leaves: dict[str, dict[str, Any]] = {}
        self.guests: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.joins or self.leaves or self.guests)

    def payload(self, group: str | None) -> dict[str, Any]:
        return {
            "group": group,
            "joins": {key: _listed(user) for key, user in self.joins.items()},
            "leaves": {key: _listed(user) for key, user in self.leaves.items()},
            "guests": dict(self.guests),
        }


def _listed(user: dict[str, Any]) -> dict[str, Any]:
    return {**user, "connections": sorted(user["connections"])}


class PresenceDiffs:
    """Joins and leaves of signed-in connections and guest counts, per group, until taken.

    ``group`` None stands for the server-wide diff (connections coming and going).
    """

    def __init__(self) -> None:
        self._diffs: dict[str | None, _Diff] = {}

    def __bool__(self) -> bool:
        return any(self._diffs.values())

    def join(self, group: str | None, connection_id: str, user_id: Any, username: Any) -> None:
        """A signed-in connection joined ``group`` (or the server)."""
        diff = self._diffs.setdefault(group, _Diff())
        key = user_key(user_id)
        user = diff.joins.setdefault(
            key, {"user_id": user_id, "username": username, "connections": set()}
        )
        user["connections"].add(connection_id)

    def leave(self, group: str | None, connection_id: str, user_id: Any, username: Any) -> None:
        """A signed-in connection left; a join of it not sent yet is dropped instead."""
        diff = self._diffs.setdefault(group, _Diff())
        key = user_key(user_id)
        joined = diff.joins.get(key)
        if joined is not None and connection_id in joined["connections"]:
            joined["connections"].discard(connection_id)
            if not joined["connections"]:
                del diff.joins[key]
            return
        user = diff.leaves.setdefault(
            key, {"user_id": user_id, "username": username, "connections": set()}
        )
        user["connections"].add(connection_id)

    def guests(self, group: str | None, process: str, count: int) -> None:
        """``process`` now has ``count`` anonymous connections in ``group`` (or the server)."""
        self._diffs.setdefault(group, _Diff()).guests[process] = count

    def take(self) -> list[tuple[str | None, dict[str, Any]]]:
        """The non-empty diffs as ``(group, payload)``, forgetting them."""
        diffs, self._diffs = self._diffs, {}
        return [(group, diff.payload(group)) for group, diff in diffs.items() if diff]

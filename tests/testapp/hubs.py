"""A hub subclass for the HUB_CLASS setting's test: it keeps what it delivered."""

from __future__ import annotations

from typing import Any

from wscommands.hub.process import Hub

delivered: list[dict[str, Any]] = []


class RecordingHub(Hub):
    """Records every fan-out message before writing it, and drops those marked private."""

    async def deliver(self, message: dict[str, Any]) -> None:
        delivered.append(message)
        if '"private"' not in message.get("text", ""):
            await super().deliver(message)

"""The message between processes: one push for the local recipients of a target, as it
travels on the channel layer. Defined here once; built by ``delivery.messaging``, read by the
hub (``hub.ordering``) and by ``streams.cursor.Push``.

Versioned: ``v`` is :data:`VERSION`. A message without ``v`` comes from a process older than
the envelope, with the same fields (version 0), and is read the same way; fields a later
version adds are ignored by this one, so old and new processes on one channel layer keep
working together during a rolling deploy (docs/protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The channel-layer ``type`` of a push between processes.
MESSAGE_TYPE = "wscommands.deliver"
#: This version of the envelope.
VERSION = 1


@dataclass(slots=True, frozen=True)
class Envelope:
    """One push between processes: its text (already encoded JSON), for whom, from when and,
    on a stream with history, at which position."""

    #: The push, encoded once by the sender.
    text: str
    #: ``"all"``, ``"group"`` (key: the group), ``"user"`` (key: the user's pk) or ``"ids"``
    #: (key: local connection numbers of the receiving process).
    target: str
    key: Any = None
    #: A connection id the push is not for (``everyone_else``).
    exclude: str | None = None
    #: The sender's clock (``time.time()``), for the receivers' delivery-lag metric.
    sent: float | None = None
    #: The stream, epoch and offset history gave the push (None: not recorded).
    stream: str | None = None
    epoch: str | None = None
    offset: int | None = None
    version: int = VERSION

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message (a dict of msgpack-able values)."""
        message: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "v": self.version,
            "text": self.text,
            "target": self.target,
            "key": self.key,
            "exclude": self.exclude,
            "sent": self.sent,
        }
        if self.stream is not None:
            message.update(stream=self.stream, epoch=self.epoch, offset=self.offset)
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Envelope:
        """Read a channel-layer message of :data:`MESSAGE_TYPE` (any version)."""
        return cls(
            text=message["text"],
            target=message.get("target", ""),
            key=message.get("key"),
            exclude=message.get("exclude"),
            sent=message.get("sent"),
            stream=message.get("stream"),
            epoch=message.get("epoch"),
            offset=message.get("offset"),
            version=message.get("v", 0),
        )

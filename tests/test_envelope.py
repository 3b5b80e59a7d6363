"""wire/envelope.py: the message between processes, defined once and versioned, so processes
of two versions on one channel layer deliver each other's pushes (rolling deploys)."""

from __future__ import annotations

import json

from channels.layers import get_channel_layer

from tests.testapp.helpers import without_presence_events
from wscommands.delivery.messaging import all_group_name
from wscommands.testing import CommandClient
from wscommands.wire.envelope import MESSAGE_TYPE, VERSION, Envelope


def test_an_envelope_survives_the_trip_through_a_channel_layer_message():
    sent = Envelope('{"a":1}', "group", "room", "x~1", 12.5, "group:room", "e1", 7)
    message = sent.to_message()
    assert message["type"] == MESSAGE_TYPE
    assert message["v"] == VERSION
    assert Envelope.from_message(json.loads(json.dumps(message))) == sent


def test_a_message_of_a_process_older_than_the_envelope_reads_as_version_0():
    old = {"type": MESSAGE_TYPE, "text": "{}", "target": "all", "key": None, "exclude": None}
    envelope = Envelope.from_message(old)
    assert (envelope.version, envelope.target, envelope.stream, envelope.sent) == (
        0,
        "all",
        None,
        None,
    )


async def test_pushes_in_an_older_and_a_newer_envelope_both_reach_the_connections(settings):
    """What an old process sends (no ``v``) and what a newer one sends (a field this version
    does not know) are delivered alike."""
    without_presence_events(settings)
    async with CommandClient() as client:
        layer = get_channel_layer()
        old = {"type": MESSAGE_TYPE, "text": '{"old":1}', "target": "all", "key": None}
        newer = {**Envelope('{"newer":2}', "all").to_message(), "v": VERSION + 1, "later": [1]}
        for message in (old, newer):
            await layer.group_send(all_group_name(), message)
        assert await client.receive_push() == {"old": 1}
        assert await client.receive_push() == {"newer": 2}

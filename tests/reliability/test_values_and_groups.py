"""Values JSON cannot hold and lookalike group names, through a real server (daphne, uvicorn,
the engine) and client."""

from __future__ import annotations

import pytest

from tests.live import SERVERS
from tests.scaleout.client import WSClient

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("kind", SERVERS, indirect=True)]


async def test_non_finite_results_are_command_failed(live, kind):
    """``square`` of 1e200 is infinite: the command fails, it is never sent as ``null``.

    A finite result in the same request is still answered, and so is the next request.
    """
    server = live(kind=kind)
    client = await WSClient.open(server.ws)
    reply = await client.request({"square": 1e200, "div": {"a": 1, "b": 4}})
    assert "square" not in reply, reply
    assert reply["errors"]["square"]["code"] == "command_failed"
    assert reply["div"] == 0.25
    # A NaN or infinity inside a structure is found too (orjson writes all of them as null).
    nested = await client.request({"echo": {"text": "x"}, "probe.nan": {}})
    assert nested["errors"]["probe.nan"]["code"] == "command_failed", nested
    assert nested["echo"] == {"text": "x"}
    assert await client.call("square", n=1e150) == 1e150 * 1e150
    assert await client.call("probe.null") is None  # a real null still goes through
    await client.close()


async def test_group_names_are_matched_whole(live, kind):
    """``"lobby\\n"`` is refused by join, presence and send_to_group alike, not taken for a
    different group that looks like ``lobby`` (Channels' ``$`` matches before a newline).
    The lookalikes share one server (a server per name and kind would start twelve)."""
    server = live(kind=kind)
    client = await WSClient.open(server.ws)
    for name in ["lobby\n", "lobby\r\n", "\nlobby", "lob by"]:
        reply = await client.request(
            {
                "chat.join": {"room": name},
                "presence.list": {"group": name},
                "probe.group": {"group": name, "message": {"hi": 1}},
            }
        )
        assert set(reply.get("errors", {})) == {"chat.join", "presence.list", "probe.group"}, (
            name,
            reply,
        )
        assert "invalid group name" in reply["errors"]["chat.join"]["message"]
        assert "invalid group name" in reply["errors"]["presence.list"]["message"]
    assert (await client.call("chat.join", room="lobby"))["room"] == "lobby"
    await client.close()

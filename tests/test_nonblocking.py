"""API.md: sync commands run in a thread pool, never on the event loop; a slow one holds up
no other connection. run_sync and send_signal for async code."""

from __future__ import annotations

import contextvars
import threading

import pytest
from django.dispatch import Signal

from tests.testapp.helpers import eventually
from wscommands import command, on_connect, run_sync, send_signal
from wscommands.testing import CommandClient

pytestmark = pytest.mark.usefixtures("scratch")


@pytest.fixture
def gate():
    """A threading.Event that is always set at the end, so no worker stays blocked."""
    event = threading.Event()
    yield event
    event.set()


async def test_a_blocked_sync_command_does_not_delay_other_connections(gate):
    """While sync commands of two connections block their threads, a third connection's sync
    and async commands are answered (one shared thread, asgiref's default, would hang)."""
    started = []

    @command(name="t.stuck")
    def stuck(connection, key: str):
        started.append(key)
        gate.wait(10)
        return key

    async with CommandClient() as a, CommandClient() as b, CommandClient() as c:
        await a.send({"t.stuck": {"key": "a"}, "request_id": 1})
        await b.send({"t.stuck": {"key": "b"}, "request_id": 1})
        await eventually(lambda: len(started) == 2)
        reply = await c.request({"square": 3, "echo": {"text": "free"}, "div": [6, 3]})
        assert reply["square"] == 9
        assert reply["echo"] == {"text": "free"}
        assert reply["errors"]["div"]["code"] == "invalid_arguments"
        assert await c.call("div", a=6, b=3) == 2
        gate.set()
        assert await a.receive() == {"t.stuck": "a", "request_id": 1}
        assert await b.receive() == {"t.stuck": "b", "request_id": 1}


async def test_sync_commands_and_hooks_run_outside_the_event_loop_thread():
    """The loop's thread never runs a sync command or hook; async ones run on the loop."""
    loop_thread = threading.get_ident()
    seen = {}

    @command(name="t.where")
    def where(connection):
        seen["sync"] = threading.get_ident()

    @command(name="t.where_async")
    async def where_async(connection):
        seen["async"] = threading.get_ident()

    @on_connect
    def hook(connection):
        seen["hook"] = threading.get_ident()

    async with CommandClient() as client:
        await client.request({"t.where": {}, "t.where_async": {}})
    assert seen["async"] == loop_thread
    assert seen["sync"] != loop_thread
    assert seen["hook"] != loop_thread


async def test_sync_commands_use_the_orm(transactional_db):
    """ORM calls work from sync commands (database connections handled in the workers)."""
    from django.contrib.auth.models import User

    @command(name="t.users")
    def users(connection, name: str):
        User.objects.create_user(name)
        return sorted(User.objects.values_list("username", flat=True))

    async with CommandClient() as client:
        assert await client.call("t.users", name="ann") == ["ann"]
        assert await client.call("t.users", name="bob") == ["ann", "bob"]


async def test_run_sync_runs_in_a_worker_thread_with_the_callers_context():
    """run_sync: the result or the exception comes back; context variables are visible."""
    var = contextvars.ContextVar("var")
    var.set("caller")
    loop_thread = threading.get_ident()

    def work(a, b=0):
        return a + b, var.get(), threading.get_ident()

    total, value, thread = await run_sync(work, 1, b=2)
    assert (total, value) == (3, "caller")
    assert thread != loop_thread

    def fail():
        raise LookupError("from the thread")

    with pytest.raises(LookupError, match="from the thread"):
        await run_sync(fail)


async def test_send_signal_runs_sync_receivers_off_the_loop(gate):
    """An async command sends a Django signal; receivers run in a worker, results return."""
    signal = Signal()
    loop_thread = threading.get_ident()
    received = []

    def receiver(sender, **kwargs):
        received.append((sender, kwargs, threading.get_ident()))
        return "handled"

    signal.connect(receiver, weak=False)

    @command(name="t.signal")
    async def send(connection, value: int):
        responses = await send_signal(signal, sender="t.signal", value=value)
        return [response for _, response in responses]

    async with CommandClient() as client:
        assert await client.call("t.signal", value=5) == ["handled"]
    sender, kwargs, thread = received[0]
    assert (sender, kwargs) == ("t.signal", {"signal": signal, "value": 5})
    assert thread != loop_thread


async def test_a_slow_signal_receiver_does_not_block_other_connections(gate):
    """send_signal does not block the event loop: other connections are answered."""
    signal = Signal()
    started = threading.Event()

    def slow_receiver(sender, **kwargs):
        started.set()
        gate.wait(10)

    signal.connect(slow_receiver, weak=False)

    @command(name="t.signal")
    async def send(connection):
        await send_signal(signal, sender=None)
        return "sent"

    async with CommandClient() as a, CommandClient() as b:
        await a.send({"t.signal": {}, "request_id": 1})
        await eventually(started.is_set)
        assert await b.call("echo", text="free") == {"text": "free"}
        gate.set()
        assert await a.receive() == {"t.signal": "sent", "request_id": 1}

"""PROTOCOL.md, Authentication; API.md: login_required, permission, sessions."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.testapp.helpers import logged_in
from wscommands import command
from wscommands.testing import CommandClient, CommandFailedError

pytestmark = pytest.mark.usefixtures("transactional_db", "scratch")


def session_store(key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(key)


@sync_to_async
def anonymous_session_key() -> str:
    store = session_store()
    store["cart"] = [1, 2]
    store.create()
    return store.session_key


@sync_to_async
def expire(key: str) -> None:
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))


@sync_to_async
def stored_session(key: str) -> dict:
    store = session_store(key)
    return dict(store.items())


def success(user) -> dict:
    return {"authenticate": "success", "user": {"id": user.pk, "username": user.username}}


async def test_handshake_cookie_identifies_the_user():
    """The session cookie of a logged-in browser makes connection.user that user."""
    ann, key = await logged_in("ann")

    @command(name="t.me")
    async def me(connection):
        return [connection.user.pk, connection.session.session_key, connection.is_authenticated()]

    async with CommandClient(session_key=key) as client:
        assert await client.call("t.me") == [ann.pk, key, True]
        who = await client.call("whoami")
        assert (who["authenticated"], who["id"], who["username"]) == (True, ann.pk, "ann")
        assert await client.call("add", a=1, b=2) == 3


async def test_without_a_cookie_the_connection_is_anonymous():
    """No session cookie (or one without a user): AnonymousUser, is_authenticated() False."""

    @command(name="t.me")
    async def me(connection):
        return [connection.user.is_anonymous, connection.is_authenticated()]

    async with CommandClient() as client:
        assert await client.call("t.me") == [True, False]
    async with CommandClient(session_key=await anonymous_session_key()) as client:
        assert await client.call("t.me") == [True, False]


async def test_authenticate_success_reply_is_exactly_the_protocols():
    """{"authenticate": {"authenticate": "success", "user": {"id", "username"}}}."""
    ann, key = await logged_in("ann")
    async with CommandClient() as client:
        await client.send({"authenticate": {"session_id": key}})
        assert await client.receive() == {"authenticate": success(ann)}
        await client.send({"authenticate": {"session_id": key}, "request_id": "a"})
        assert await client.receive() == {"authenticate": success(ann), "request_id": "a"}


async def test_after_authenticate_the_connection_acts_as_the_user():
    """Later commands of the same request and of later requests run as that user."""
    ann, key = await logged_in("ann")

    @command(name="t.me")
    async def me(connection):
        return [connection.user.pk, connection.session.session_key]

    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call("add", a=1, b=2)
        assert info.value.code == "not_authenticated"
        reply = await client.request(
            {"authenticate": {"session_id": key}, "t.me": {}, "add": {"a": 1, "b": 2}}
        )
        assert reply["authenticate"] == success(ann)
        assert reply["t.me"] == [ann.pk, key]
        assert reply["add"] == 3
        assert (await client.call("whoami"))["username"] == "ann"


async def failure_closes(client: CommandClient, argument, ran: list) -> None:
    await client.send({"t.before": {}, "authenticate": argument, "t.after": {}, "request_id": 1})
    await client.send({"t.after": {}, "request_id": 2})
    reply = await client.receive()
    assert reply["t.before"] == "before"
    assert set(reply) == {"t.before", "authenticate", "request_id"}
    assert set(reply["authenticate"]) == {"authenticate", "message"}
    assert reply["authenticate"]["authenticate"] == "failure"
    assert isinstance(reply["authenticate"]["message"], str)
    assert await client.wait_closed() == 3000


@pytest.mark.parametrize(
    "kind", ["unknown", "expired", "anonymous", "no session", "not a string", "missing"]
)
async def test_authenticate_failure_replies_closes_3000_and_stops_the_request(kind):
    """Unknown, expired or anonymous session: failure, close 3000, later commands do not
    run (neither in that request nor in requests sent after it)."""
    ran = []

    @command(name="t.before")
    async def before(connection):
        ran.append("before")
        return "before"

    @command(name="t.after")
    def after(connection):
        ran.append("after")
        return "after"

    if kind == "unknown":
        argument = {"session_id": "nosuchsessionkeyatall1234567890x"}
    elif kind == "expired":
        _, key = await logged_in("ann")
        await expire(key)
        argument = {"session_id": key}
    elif kind == "anonymous":
        argument = {"session_id": await anonymous_session_key()}
    elif kind == "no session":  # GET /session_id's answer to an anonymous visitor
        argument = {"session_id": ""}
    elif kind == "not a string":
        argument = {"session_id": 12345}
    else:
        argument = {}
    async with CommandClient() as client:
        await failure_closes(client, argument, ran)
    assert ran == ["before"]


async def test_failed_authenticate_on_an_identified_connection_also_closes():
    """A logged-in connection sending a bad session id is closed with 3000 too."""
    _, key = await logged_in("ann")
    ran = []

    @command(name="t.before")
    async def before(connection):
        ran.append("before")
        return "before"

    @command(name="t.after")
    async def after(connection):
        ran.append("after")

    async with CommandClient(session_key=key) as client:
        await failure_closes(client, {"session_id": "bogus"}, ran)
    assert ran == ["before"]


async def test_authenticate_switches_an_identified_connection_to_the_new_session():
    """Cookie of ann, then authenticate as bob: user, session and user-addressed messages
    all follow bob from then on."""
    ann, ann_key = await logged_in("ann")
    bob, bob_key = await logged_in("bob")

    @command(name="t.me")
    async def me(connection):
        return [connection.user.pk, connection.session.session_key]

    @command(name="t.remember")
    async def remember(connection, value: str):
        await connection.update_session("remembered", value)

    async with CommandClient(session_key=ann_key) as client:
        assert await client.call("t.me") == [ann.pk, ann_key]
        reply = await client.request({"authenticate": {"session_id": bob_key}, "t.me": {}})
        assert reply["authenticate"] == success(bob)
        assert reply["t.me"] == [bob.pk, bob_key]
        await client.call("t.remember", value="x")
        assert (await stored_session(bob_key))["remembered"] == "x"
        assert "remembered" not in await stored_session(ann_key)
        # Messages to ann no longer reach this connection; messages to bob do.
        from wscommands import send_to_subset

        await send_to_subset([ann], {"to": "ann"})
        await send_to_subset([bob], {"to": "bob"})
        assert await client.receive_push() == {"to": "bob"}
        # And an authenticate after an authenticate switches again.
        reply = await client.request({"authenticate": ann_key, "t.me": {}})
        assert reply["authenticate"] == success(ann)
        assert reply["t.me"] == [ann.pk, ann_key]


async def test_login_required_refuses_anonymous_users():
    """login_required: not_authenticated for anonymous users, the function is not called."""
    _, key = await logged_in("ann")
    calls = []

    @command(name="t.private", login_required=True)
    def private(connection):
        calls.append(connection.user.username)
        return "secret"

    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.private")
        assert info.value.code == "not_authenticated"
    async with CommandClient(session_key=key) as client:
        assert await client.call("t.private") == "secret"
    assert calls == ["ann"]


async def test_permission_not_authenticated_permission_denied_or_allowed():
    """permission: anonymous -> not_authenticated; lacking it -> permission_denied."""
    _, plain_key = await logged_in("plain")
    _, allowed_key = await logged_in("allowed", "chat.add_message")
    calls = []

    @command(name="t.guarded", permission="chat.add_message")
    async def guarded(connection):
        calls.append(connection.user.username)
        return "ok"

    async def code(key):
        async with CommandClient(session_key=key) as client:
            try:
                return await client.call("t.guarded")
            except CommandFailedError as exc:
                return exc.code

    assert await code(None) == "not_authenticated"
    assert await code(plain_key) == "permission_denied"
    assert await code(allowed_key) == "ok"
    assert calls == ["allowed"]


async def test_the_example_chat_say_needs_its_permission():
    """The example chat.say (permission chat.add_message) as anonymous and as a plain user."""
    _, plain_key = await logged_in("plain")
    async with CommandClient() as client:
        reply = await client.request({"chat.say": {"room": "lobby", "text": "hi"}})
        assert reply["errors"]["chat.say"]["code"] == "not_authenticated"
    async with CommandClient(session_key=plain_key) as client:
        reply = await client.request({"chat.say": {"room": "lobby", "text": "hi"}})
        assert reply["errors"]["chat.say"]["code"] == "permission_denied"


async def test_update_session_and_remove_from_session_are_saved_to_the_store():
    """update_session/remove_from_session reach Django's session store, not just memory."""
    _, key = await logged_in("ann")

    @command(name="t.set")
    async def set_(connection, key: str, value):
        await connection.update_session(key, value)

    @command(name="t.remove")
    async def remove(connection, key: str):
        await connection.remove_from_session(key)

    async with CommandClient(session_key=key) as client:
        await client.call("t.set", key="theme", value={"dark": True})
        assert (await stored_session(key))["theme"] == {"dark": True}
        await client.call("t.remove", key="theme")
        await client.call("t.remove", key="never-set")
        stored = await stored_session(key)
        assert "theme" not in stored
        assert "_auth_user_id" in stored  # still logged in
    async with CommandClient(session_key=key) as client:
        assert (await client.call("whoami"))["username"] == "ann"


@sync_to_async
def http_session_id(login_as: str | None = None):
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    if login_as:
        client.force_login(User.objects.get(username=login_as))
    first = client.get("/session_id")
    second = client.get("/session_id")
    return client, first, second


async def test_session_id_view_serves_the_browser_sessions_key():
    """GET /session_id: plain text, the key of the logged-in browser's session, never cached."""
    await logged_in("ann")
    client, first, second = await http_session_id("ann")
    assert first.status_code == 200
    assert first["Content-Type"].startswith("text/plain")
    key = first.content.decode()
    assert key == client.cookies[settings.SESSION_COOKIE_NAME].value
    assert second.content.decode() == key
    assert "no-cache" in first["Cache-Control"] or "max-age=0" in first["Cache-Control"]


async def test_session_id_view_stores_nothing_for_anonymous_visitors():
    """An anonymous visitor gets an empty body and no session cookie (no row is stored)."""
    client, first, second = await http_session_id()
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == b""
    assert settings.SESSION_COOKIE_NAME not in client.cookies
    assert "no-cache" in first["Cache-Control"] or "max-age=0" in first["Cache-Control"]


async def test_session_id_of_a_logged_in_browser_authenticates_a_websocket():
    """The seed's flow: fetch /session_id over HTTP, send it in authenticate."""
    ann, _ = await logged_in("ann")
    _, response, _ = await http_session_id("ann")
    async with CommandClient() as client:
        reply = await client.request({"authenticate": {"session_id": response.content.decode()}})
    assert reply["authenticate"] == success(ann)

"""API.md, registration: @command, seed-style settings commands, the default handler,
autodiscovery, reserved and duplicate names, system checks, custom consumers."""

from __future__ import annotations

import asyncio
import sys

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import path

from tests.live import Server, base_env, manage
from wscommands import Command, CommandConsumer, Registry, command, registry
from wscommands.commands.registry import load_settings_commands
from wscommands.testing import CommandClient

pytestmark = pytest.mark.usefixtures("scratch")


def test_the_decorator_with_and_without_arguments():
    """@command, @command() and @command(name=...) register and return the function."""

    def plain(connection):
        pass

    def called(connection):
        pass

    def renamed(connection):
        pass

    assert command(plain) is plain
    assert command()(called) is called
    assert command(name="t.other-name", concurrent=True)(renamed) is renamed
    assert registry.get("plain").func is plain
    assert registry.get("called").func is called
    assert registry.get("t.other-name").func is renamed
    assert registry.get("t.other-name").concurrent
    assert not registry.is_registered("renamed")


def test_permission_implies_login_required():
    """permission= refuses anonymous users too; it must look like app_label.codename."""

    @command(name="t.perm", permission="chat.add_message")
    def perm(connection):
        pass

    cmd = registry.get("t.perm")
    assert (cmd.login_required, cmd.permission) == (True, "chat.add_message")
    with pytest.raises(ImproperlyConfigured, match=r"app_label\.codename"):
        command(permission="nodot")


@pytest.mark.parametrize(
    "name", ["request_id", "errors", "unimplemented", "request", "authenticate"]
)
def test_reserved_names_are_refused_naming_the_function(name):
    """Reserved names: ImproperlyConfigured saying where the offending function is."""

    def offender(connection):
        pass

    with pytest.raises(ImproperlyConfigured) as info:
        command(name=name)(offender)
    message = str(info.value)
    assert repr(name) in message
    assert "offender" in message and __file__ in message
    with pytest.raises(ImproperlyConfigured):
        load_settings_commands({name: "tests.testapp.legacy.other"})
    assert registry.get(name) is None


def test_duplicate_names_are_refused_naming_both_places():
    """A second function under a taken name: ImproperlyConfigured with both definitions."""

    def first_definition(connection):
        pass

    def second_definition(connection):
        pass

    command(name="t.dup")(first_definition)
    with pytest.raises(ImproperlyConfigured) as info:
        command(name="t.dup")(second_definition)
    message = str(info.value)
    assert "first_definition" in message and "second_definition" in message
    assert message.count(__file__) == 2
    assert registry.get("t.dup").func is first_definition
    # Against an example command, from the settings dict.
    with pytest.raises(ImproperlyConfigured) as info:
        load_settings_commands({"echo": "tests.testapp.legacy.other"})
    assert "project.demo.commands.echo" in str(info.value)
    assert "tests.testapp.legacy.other" in str(info.value)


@pytest.mark.parametrize(
    ("settings_module", "expected"),
    [
        ("tests.testapp.settings_reserved", ["'unimplemented'", "tests.testapp.legacy.other"]),
        (
            "tests.testapp.settings_duplicate",
            ["'echo'", "tests.testapp.legacy.other", "project.demo.commands.echo"],
        ),
    ],
)
def test_reserved_and_duplicate_names_stop_the_start_up(sqlite_env, settings_module, expected):
    """`manage.py check` (any start-up) fails with ImproperlyConfigured naming the places."""
    env = base_env(DJANGO_SETTINGS_MODULE=settings_module, DATABASE_URL=sqlite_env["DATABASE_URL"])
    with pytest.raises(RuntimeError) as info:
        manage("check", env=env)
    message = str(info.value)
    assert "ImproperlyConfigured" in message
    for text in expected:
        assert text in message


@pytest.mark.parametrize(
    ("path", "error"),
    [("tests.testapp.legacy.missing", "cannot be imported"), ("no.such.module", "cannot be")],
)
def test_settings_commands_with_bad_paths_are_refused(path, error):
    """A dotted path that does not import, or is not callable: ImproperlyConfigured."""
    with pytest.raises(ImproperlyConfigured, match=error):
        load_settings_commands({"t.bad": path})
    with pytest.raises(ImproperlyConfigured, match="not callable"):
        load_settings_commands({"t.bad": "tests.testapp.legacy.NOT_CALLABLE"})


async def test_seed_style_settings_commands_get_msg_response_connection():
    """WSCOMMANDS["COMMANDS"]: f(msg, response, connection) writes into the reply object
    (or returns); the argument arrives as is, whatever its JSON type."""
    load_settings_commands(
        {
            "remember": "tests.testapp.legacy.remember",
            "returns": "tests.testapp.legacy.returns",
            "async_seed": "tests.testapp.legacy.async_seed",
        }
    )
    async with CommandClient() as client:
        connection_id = (await client.call("whoami"))["connection_id"]
        for msg in [{"a": 1}, "text", 5, [1, 2], None, {}]:
            reply = await client.request({"remember": msg, "returns": msg, "async_seed": msg})
            assert reply["remember"] == {"msg": msg, "connection_id": connection_id}
            assert reply["returns"] == ["returned", msg]
            if msg is None:
                assert reply["async_seed"] is None
            else:
                assert reply["async_seed"] == msg


async def test_the_example_settings_command_legacy_echo():
    """The example project registers legacy_echo through its settings dict."""
    assert (
        django_settings.WSCOMMANDS["COMMANDS"]["legacy_echo"] == "project.demo.legacy.legacy_echo"
    )
    async with CommandClient() as client:
        assert await client.call("legacy_echo", {"x": [1]}) == {"x": [1]}


def test_example_apps_commands_are_autodiscovered():
    """Each installed app's commands module is imported at start-up."""
    assert registry.get("echo").func.__module__ == "project.demo.commands"
    assert registry.get("chat.join").func.__module__ == "project.chat.commands"


def test_autodiscovery_imports_commands_of_an_app_added_later():
    """Installing tests.testapp (ready() runs again) discovers tests/testapp/commands.py."""
    sys.modules.pop("tests.testapp.commands", None)
    assert not registry.is_registered("testapp.ping")
    try:
        with override_settings(INSTALLED_APPS=[*django_settings.INSTALLED_APPS, "tests.testapp"]):
            assert registry.get("testapp.ping").func.__module__ == "tests.testapp.commands"
    finally:
        sys.modules.pop("tests.testapp.commands", None)


def test_the_example_project_has_no_default_handler():
    """Independent clients expect invalid_json from the example server."""
    assert registry.get("default") is None


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_default_handler_receives_frames_that_are_not_json(kind):
    """@command(name="default") gets the raw text; a dict it returns is the reply."""
    received = []

    def handle(text):
        received.append(text)
        return {"seen": text} if text != "quiet" else "not a dict"

    async def async_default(connection, text):
        return handle(text)

    def sync_default(connection, text):
        return handle(text)

    command(name="default")(async_default if kind == "async" else sync_default)
    async with CommandClient() as client:
        await client.send("hello there")
        assert await client.receive() == {"seen": "hello there"}
        await client.send("quiet")
        await client.send("[1, 2]")  # JSON, not an object: still invalid_request
        reply = await client.receive()
        assert reply["errors"]["request"]["code"] == "invalid_request"
        assert await client.call("echo", text="json still works") == {"text": "json still works"}
    assert received == ["hello there", "quiet"]


async def test_a_failing_default_handler_reports_under_errors_default():
    """An exception in the default handler: errors.default, connection open."""

    @command(name="default")
    def default(connection, text):
        raise RuntimeError("secret")

    async with CommandClient() as client:
        await client.send("x")
        reply = await client.receive()
        assert reply["errors"]["default"]["code"] == "command_failed"
        assert "secret" not in str(reply)
        assert await client.call("echo", text="ok") == {"text": "ok"}


async def test_the_seeds_default_entry_in_the_settings_dict():
    """A settings-dict entry named default also receives non-JSON frames."""
    load_settings_commands({"default": "tests.testapp.legacy.default"})
    async with CommandClient() as client:
        await client.send("raw")
        assert await client.receive() == {"default": {"raw": "raw"}}


async def test_a_consumer_subclass_with_its_own_registry():
    """Users can route a CommandConsumer subclass that looks commands up elsewhere."""
    own = Registry()

    async def only_here(connection, n: int):
        return n + 1

    own.register(Command(name="only.here", func=only_here))

    class OwnConsumer(CommandConsumer):
        registry = own

    application = URLRouter([path("own/", OwnConsumer.as_asgi())])
    async with CommandClient(application, path="/own/") as client:
        reply = await client.request({"only.here": {"n": 1}, "echo": {"text": "x"}})
    assert reply["only.here"] == 2
    assert reply["errors"]["unimplemented"] == ["echo"]


async def test_a_registrys_own_decorators_fill_that_registry_only():
    """@own.command / @own.on_connect / @own.on_disconnect: served by the consumer that uses
    ``own``, invisible to the default registry (and so to the example's consumer)."""
    own = Registry()
    seen: list[str] = []

    @own.command(name="own.add")
    async def add(connection, a: int, b: int):
        return a + b

    @own.on_connect
    async def hello(connection):
        seen.append("connect")

    @own.on_disconnect
    def bye(connection):
        seen.append("disconnect")

    assert not registry.is_registered("own.add")
    assert hello not in registry.connect_hooks and bye not in registry.disconnect_hooks

    class OwnConsumer(CommandConsumer):
        registry = own

    application = URLRouter([path("own/", OwnConsumer.as_asgi())])
    async with CommandClient(application, path="/own/") as client:
        assert await client.call("own.add", a=1, b=2) == 3
    assert seen == ["connect", "disconnect"]
    async with CommandClient() as client:  # the example project's consumer
        reply = await client.request({"own.add": {"a": 1, "b": 2}})
    assert reply["errors"]["unimplemented"] == ["own.add"]


async def test_a_consumer_that_overrides_send_has_it_called_for_every_reply():
    """Replies skip Channels' send layers only while ``send`` is Channels' own; a subclass's
    ``send`` sees every text frame."""
    sent: list[str] = []

    class OwnConsumer(CommandConsumer):
        async def send(self, text_data=None, bytes_data=None, close=False):
            sent.append(text_data)
            await super().send(text_data, bytes_data, close)

    application = URLRouter([path("own/", OwnConsumer.as_asgi())])
    async with CommandClient(application, path="/own/") as client:
        reply = await client.request({"echo": {"text": "x"}, "request_id": 1})
    assert reply["echo"] == {"text": "x"}
    assert any('"request_id":1' in text for text in sent)


async def test_a_consumer_that_overrides_receive_has_it_called_for_every_frame():
    """Frames skip dispatch and receive only while both are CommandConsumer's own."""
    frames: list[str | None] = []

    class OwnConsumer(CommandConsumer):
        async def receive(self, text_data=None, bytes_data=None):
            frames.append(text_data)
            await super().receive(text_data, bytes_data)

    application = URLRouter([path("own/", OwnConsumer.as_asgi())])
    async with CommandClient(application, path="/own/") as client:
        reply = await client.request({"echo": {"text": "x"}, "request_id": 1})
    assert reply["echo"] == {"text": "x"}
    assert len(frames) == 1 and '"request_id":1' in (frames[0] or "")


async def test_a_consumer_with_a_channel_layer_gets_channels_dispatch_loop():
    """``channel_layer_alias`` set: Channels' loop over the client and the layer, so a
    layer message reaches its ``type`` handler."""
    got: list[str] = []
    names: list[str] = []
    arrived = asyncio.Event()

    class LayerConsumer(CommandConsumer):
        channel_layer_alias = "default"

        async def connect(self):
            names.append(self.channel_name)
            await super().connect()

        async def test_hello(self, message):
            got.append(message["text"])
            arrived.set()

    application = URLRouter([path("layer/", LayerConsumer.as_asgi())])
    async with CommandClient(application, path="/layer/") as client:
        assert (await client.request({"echo": {"text": "x"}}))["echo"] == {"text": "x"}
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_add("test.layer.consumer", names[0])
        await layer.group_send("test.layer.consumer", {"type": "test.hello", "text": "hi"})
        assert (await client.request({"echo": {"text": "y"}}))["echo"] == {"text": "y"}
        # A Redis layer delivers after a hop of its own: wait for the handler.
        async with asyncio.timeout(10):
            await arrived.wait()
    assert got == ["hi"]


def wscommands_errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if m.id and m.id.startswith("wscommands.")]


def test_system_checks_pass_for_the_example_project():
    assert wscommands_errors() == []


def test_system_check_missing_channel_layer():
    """No channel layer: an error that says how to add one."""
    with override_settings(CHANNEL_LAYERS={}):
        errors = wscommands_errors()
    assert [e.id for e in errors] == ["wscommands.E002"]
    assert "CHANNEL_LAYERS" in errors[0].msg
    assert "InMemoryChannelLayer" in errors[0].hint


def test_system_check_unknown_setting_suggests_the_right_one():
    """A misspelt WSCOMMANDS key: an error with a did-you-mean."""
    with override_settings(WSCOMMANDS={"BAKEND": "memory"}):
        errors = wscommands_errors()
    assert [e.id for e in errors] == ["wscommands.E001"]
    assert "'BAKEND'" in errors[0].msg
    assert "Did you mean 'BACKEND'?" in errors[0].msg


def test_every_name_of_the_api_is_importable_from_wscommands():
    """API.md: everything users write against is importable from wscommands itself."""
    import wscommands

    names = [
        "command",
        "ClientError",
        "on_connect",
        "on_disconnect",
        "broadcast",
        "send_to_subset",
        "send_to_group",
        "get_global_state",
        "update_global_state",
        "increment_global_state",
        "run_sync",
        "send_signal",
    ]
    for name in names:
        assert name in wscommands.__all__, name
        assert callable(getattr(wscommands, name)), name


def test_daphne_refuses_to_start_without_a_channel_layer(sqlite_env):
    """daphne runs no system checks: wscommands' own start-up check stops it, with the fix."""
    env = base_env(
        DJANGO_SETTINGS_MODULE="tests.testapp.settings_no_layer",
        DATABASE_URL=sqlite_env["DATABASE_URL"],
    )
    server = Server(env)
    with pytest.raises(RuntimeError, match="exited"):
        server.start()
    server.stop()
    log = server.log()
    assert "wscommands is misconfigured" in log
    assert "CHANNEL_LAYERS['default'] is not configured" in log
    assert "InMemoryChannelLayer" in log  # the hint says how to fix it


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEALTH_CHECK_INTERVAL", 0),
        ("PRESENCE_TTL", -1),
        ("GROUP_REFRESH_INTERVAL", 0.0),
        ("SESSION_CHECK_INTERVAL", 0),
        ("MAX_INBOX", "32"),
        ("WORKER_THREADS", 0),
    ],
)
def test_system_check_refuses_intervals_and_sizes_that_are_not_positive(name, value):
    """A zero interval would be a hot loop: refused at start-up with how to fix it."""
    with override_settings(WSCOMMANDS={name: value}):
        errors = wscommands_errors()
    assert len(errors) == 1
    assert f'WSCOMMANDS["{name}"] must be a positive' in errors[0].msg
    assert "Remove it to use the default" in errors[0].hint


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("wscommands.hub.NoSuchHub", "cannot be imported"),
        (
            "wscommands.commands.registry.Registry",
            "is not a subclass of wscommands.hub.Hub",
        ),
    ],
)
def test_system_check_refuses_a_hub_class_that_is_not_a_hub(path, problem):
    with override_settings(WSCOMMANDS={"HUB_CLASS": path}):
        errors = wscommands_errors()
    assert [e.id for e in errors] == ["wscommands.E007"]
    assert problem in errors[0].msg
    assert "wscommands.hub.Hub" in errors[0].hint


NUMERIC_SETTINGS = sorted(
    name
    for name, value in __import__("wscommands.conf", fromlist=["DEFAULTS"]).DEFAULTS.items()
    if isinstance(value, int | float) and not isinstance(value, bool)
)


#: Numeric settings where 0 is documented as "off" (docs/settings.md).
ZERO_MEANS_OFF = {"HISTORY_SIZE", "PRESENCE_GRACE"}


@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_every_interval_and_size_setting_refuses_zero_and_negatives(name):
    """A new numeric setting without a start-up check fails here (0 would be a hot loop or a
    limit that refuses everything, unless it is documented as "off")."""
    for value in (-1,) if name in ZERO_MEANS_OFF else (0, -1):
        with override_settings(WSCOMMANDS={name: value}):
            errors = wscommands_errors()
        assert any(f'WSCOMMANDS["{name}"]' in e.msg for e in errors), (name, value, errors)

"""The command registry: the ``@command`` decorator, hooks, settings and autodiscovery.

Commands are registered at import time and looked up by name on every request; everything
that can be worked out once (signature, sync or async, where it was defined) is worked out
here, at registration.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules, import_string

from .._internal.threads import is_async
from ..wire.protocol import RESERVED_KEYS, RESERVED_NAMES
from .arguments import Signature, check_annotation

F = TypeVar("F", bound=Callable[..., Any])

#: Seed style: ``f(msg, response, connection)``, registered in ``WSCOMMANDS["COMMANDS"]``.
SEED = "seed"
#: Decorator style: ``f(connection, **arguments)``.
DECORATOR = "decorator"


def describe(func: Callable[..., Any]) -> str:
    """``module.qualname (file:line)``: where a function was defined, for error messages."""
    code = getattr(func, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code else ""
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)!s}{where}"


@dataclass(slots=True)
class Command:
    """A registered command and everything needed to call it."""

    name: str
    func: Callable[..., Any]
    style: str = DECORATOR
    login_required: bool = False
    permission: str | None = None
    concurrent: bool = False
    is_async: bool = field(init=False)
    signature: Signature | None = field(init=False)

    def __post_init__(self) -> None:
        self.is_async = is_async(self.func)
        self.signature = (
            Signature(self.func, describe(self.func)) if self.style == DECORATOR else None
        )


@dataclass(slots=True, frozen=True)
class Push:
    """A declared server push: the key of the message the server sends and its value's type."""

    event: str
    annotation: Any
    description: str = ""


class Registry:
    """Commands by name, the declared pushes, the connect, disconnect and join hooks.

    The module-level :data:`registry` is the one ``@command`` fills and
    :class:`~wscommands.consumer.CommandConsumer` uses. A consumer subclass may serve its own:
    ``registry = Registry()`` on the class, and ``@registry.command`` /
    ``@registry.on_connect`` / ``@registry.on_disconnect`` to fill it.
    """

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.pushes: dict[str, Push] = {}
        self.connect_hooks: list[Callable[..., Any]] = []
        self.disconnect_hooks: list[Callable[..., Any]] = []
        self.join_hooks: list[Callable[..., Any]] = []
        #: Counts changes to commands and pushes, so a published schema knows when to rebuild.
        self.version = 0

    def register(self, cmd: Command) -> Command:
        """Add a command; raises ImproperlyConfigured for reserved or duplicate names.

        Registering the same function again (a module imported twice) replaces it quietly.
        """
        if not isinstance(cmd.name, str) or not cmd.name:
            raise ImproperlyConfigured(f"Command name must be a non-empty string: {cmd.name!r}")
        if cmd.name in RESERVED_NAMES:
            raise ImproperlyConfigured(
                f"{cmd.name!r} is a reserved name in the wscommands protocol and cannot be a "
                f"command ({describe(cmd.func)}). Choose another name with "
                f'@command(name="...").'
            )
        existing = self.commands.get(cmd.name)
        if existing is not None and not _same_function(existing.func, cmd.func):
            raise ImproperlyConfigured(
                f"Command {cmd.name!r} is registered twice: by {describe(existing.func)} and "
                f"by {describe(cmd.func)}. Rename one of them."
            )
        self.commands[cmd.name] = cmd
        self.version += 1
        return cmd

    def declare_push(self, event: str, annotation: Any, description: str = "") -> Push:
        """Declare that the server sends ``{event: value}`` with ``value`` of ``annotation``.

        ``description`` defaults to the annotation's own docstring, if it is a class.
        Raises ImproperlyConfigured for a reserved key, an annotation msgspec cannot check,
        or an event declared twice with different types.
        """
        if not isinstance(event, str) or not event or event in RESERVED_KEYS:
            raise ImproperlyConfigured(
                f"A push's event must be a non-empty string other than "
                f"{', '.join(sorted(RESERVED_KEYS))}: got {event!r}"
            )
        check_annotation(annotation, f"push {event!r}")
        if not description and isinstance(annotation, type):
            # its own docstring, not one inherited (msgspec.Struct has one)
            description = inspect.cleandoc(vars(annotation).get("__doc__") or "")
        push = Push(event, annotation, description)
        existing = self.pushes.get(event)
        if existing is not None and existing.annotation != annotation:
            raise ImproperlyConfigured(
                f"Push {event!r} is declared twice, as {existing.annotation!r} and as "
                f"{annotation!r}. Declare it once."
            )
        self.pushes[event] = push
        self.version += 1
        return push

    def is_registered(self, name: str) -> bool:
        """True when a command of that name exists."""
        return name in self.commands

    def get(self, name: str) -> Command | None:
        """The command registered under ``name``, or None."""
        return self.commands.get(name)

    def add_hook(self, hooks: list[Callable[..., Any]], func: Callable[..., Any]) -> None:
        """Append ``func`` to ``hooks`` (a re-imported module's hook replaces its old self)."""
        if not any(_same_function(func, h) for h in hooks):
            hooks.append(func)
        else:  # re-imported module: keep the position, take the new function
            hooks[:] = [func if _same_function(func, h) else h for h in hooks]

    @overload
    def command(self, func: F, /) -> F: ...
    @overload
    def command(
        self,
        /,
        *,
        name: str | None = None,
        login_required: bool = False,
        permission: str | None = None,
        concurrent: bool = False,
    ) -> Callable[[F], F]: ...
    def command(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        login_required: bool = False,
        permission: str | None = None,
        concurrent: bool = False,
    ) -> Any:
        """Register a function as a command of this registry, with or without arguments.

        ``name`` defaults to the function's name. ``login_required`` refuses anonymous users
        (``not_authenticated``); ``permission`` ("app_label.codename") also refuses users
        without it (``permission_denied``). ``concurrent`` lets this connection's later
        requests run while this one is still running. A command named ``default`` receives
        frames that are not JSON. Raises ImproperlyConfigured for reserved or duplicate names.
        """
        if permission is not None and (not isinstance(permission, str) or "." not in permission):
            raise ImproperlyConfigured(
                f'permission must be "app_label.codename", got {permission!r}'
            )

        def decorator(f: F) -> F:
            if not callable(f):
                raise ImproperlyConfigured(f"@command needs a function, got {f!r}")
            self.register(
                Command(
                    name=name or f.__name__,
                    func=f,
                    login_required=login_required or permission is not None,
                    permission=permission,
                    concurrent=concurrent,
                )
            )
            return f

        return decorator(func) if func is not None else decorator

    def on_connect(self, func: F) -> F:
        """Run ``func(connection)`` when a connection opens, before its first request.

        If it raises, the error is logged and the connection is closed with 4500.
        """
        self.add_hook(self.connect_hooks, func)
        return func

    def on_disconnect(self, func: F) -> F:
        """Run ``func(connection)`` when a connection closes, whatever the reason."""
        self.add_hook(self.disconnect_hooks, func)
        return func

    def authorize_join(self, func: F) -> F:
        """Decide whether ``func(connection, group)`` may join a group (sync or async -> bool).

        Every registered hook must return true: ``connection.join`` raises PermissionDenied
        otherwise, and a resuming client gets its group streams back (re-joined) only if they
        allow it. Without any hook, ``join`` lets every group in and a resume restores no group.
        """
        self.add_hook(self.join_hooks, func)
        return func


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


#: The registry ``@command``, ``@on_connect`` and ``@on_disconnect`` fill, and the one
#: :class:`~wscommands.consumer.CommandConsumer` serves.
registry = Registry()

#: ``@command``: :meth:`Registry.command` of the default :data:`registry`.
command = registry.command
#: ``@on_connect``: :meth:`Registry.on_connect` of the default :data:`registry`.
on_connect = registry.on_connect
#: ``@on_disconnect``: :meth:`Registry.on_disconnect` of the default :data:`registry`.
on_disconnect = registry.on_disconnect
#: ``@authorize_join``: :meth:`Registry.authorize_join` of the default :data:`registry`.
authorize_join = registry.authorize_join


_NO_TYPE: Any = object()


def declare_push(event: str, annotation: Any = _NO_TYPE, *, description: str = "") -> Any:
    """Declare a server push: ``declare_push("counter", Counter)``, or on a class::

        @declare_push("chat_message")
        class ChatMessage(msgspec.Struct): ...

    The server's ``{event: value}`` messages are then described (``describe``, AsyncAPI,
    TypeScript), and checked against the type in development (``VALIDATE_OUTGOING``).
    ``description`` defaults to the class's docstring. Raises ImproperlyConfigured for a
    reserved key or an annotation msgspec cannot check.
    """
    if annotation is not _NO_TYPE:
        registry.declare_push(event, annotation, description)
        return annotation

    def decorator(cls: Any) -> Any:
        registry.declare_push(event, cls, description)
        return cls

    return decorator


def load_settings_commands(commands: dict[str, str], into: Registry = registry) -> None:
    """Register the seed-style commands named in ``WSCOMMANDS["COMMANDS"]`` (into ``into``)."""
    if not isinstance(commands, dict):
        raise ImproperlyConfigured('WSCOMMANDS["COMMANDS"] must be a dict of name -> dotted path')
    for name, path in commands.items():
        try:
            func = import_string(path) if isinstance(path, str) else path
        except ImportError as exc:
            raise ImproperlyConfigured(
                f'WSCOMMANDS["COMMANDS"][{name!r}] = {path!r} cannot be imported: {exc}'
            ) from exc
        if not callable(func):
            raise ImproperlyConfigured(
                f'WSCOMMANDS["COMMANDS"][{name!r}] = {path!r} is not callable'
            )
        into.register(Command(name=name, func=func, style=SEED))


def autodiscover(module_name: str = "commands") -> None:
    """Import ``<app>.<module_name>`` from every installed app that has one."""
    autodiscover_modules(module_name)

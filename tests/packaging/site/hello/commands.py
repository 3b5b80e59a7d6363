"""The minimal project's commands, found by autodiscovery."""

from wscommands import command


@command
async def greet(connection, name: str) -> str:
    """Greet ``name``, counting greetings in the global state (Redis with the redis extra)."""
    count = await connection.increment_global_state("greetings")
    return f"hello {name} #{count}"

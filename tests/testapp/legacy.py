"""Seed-style commands ``f(msg, response, connection)``, registered through settings."""


def remember(msg, response, connection):
    """Writes into the response object, as TwistedDjango commands did."""
    response["remember"] = {"msg": msg, "connection_id": connection.id}


def returns(msg, response, connection):
    """A seed-style command may also return its result."""
    return ["returned", msg]


async def async_seed(msg, response, connection):
    response["async_seed"] = msg


def other(msg, response, connection):
    return "other"


def default(connection, text):
    """The seed's default handler: gets frames that are not JSON."""
    return {"default": {"raw": text}}


NOT_CALLABLE = 42

"""A seed-style command, registered in settings: WSCOMMANDS["COMMANDS"]["legacy_echo"]."""


def legacy_echo(msg, response, connection):
    """TwistedDjango's signature: write the answer into the response object."""
    response["legacy_echo"] = msg

"""The published API: the JSON document of the commands and pushes, AsyncAPI, TypeScript.

May import: conf, observability, wire, _internal, commands.
"""

"""Registering commands and binding their arguments (annotations, pydantic models), and
the development-time checks of what they return.

May import: conf, observability, wire, _internal.
"""

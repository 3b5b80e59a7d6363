"""Admission and resources: handshake limits and caps, origins, authentication and session
watching, per-connection budgets and flow control, graceful shutdown.

May import: everything but connection and server.
"""

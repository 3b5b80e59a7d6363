"""One connection's state and the API commands use on it: its groups, its state, its pushes.

May import: everything but server.
"""

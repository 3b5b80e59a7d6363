"""The operations page's data: each process publishes its figures, staff read them all.

May import: conf, observability, wire, _internal, backends.
"""

"""The wire format: JSON decoding and encoding, frames and replies, error types, and every
wire constant (``codes``: it imports nothing, so any layer may use it; ``jsconstants`` writes
the browser client's copy).

May import: conf, observability.
"""

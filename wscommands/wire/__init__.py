"""The wire format: JSON decoding and encoding, frames and replies, error types and codes.

May import: conf, observability.
"""

"""Logs, metrics (with their Prometheus collector) and tracing hooks.

May import: conf, and wire.codes (constants only: it imports nothing).
"""

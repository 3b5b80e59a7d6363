"""Logs, metrics (with their Prometheus collector) and tracing hooks.

May import: conf.
"""

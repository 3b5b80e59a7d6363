"""Adapters to other libraries' internals and plumbing: compat fence, per-loop state,
ordered calls, cancellation helpers, the fair worker-thread pool.

May import: conf, observability, wire.
"""

"""Who is online: the per-process tracker, the heartbeat and reaper, the diffs pushed to
watchers and the queries commands make.

May import: conf, observability, wire, _internal, backends, streams, delivery.
"""

"""Delivery between processes: publishing on the channel layer, group names, writing one
message to the local peers, the layer groups a process holds.

May import: conf, observability, wire, _internal, backends, commands, streams.
"""

"""What a process (one per event loop) runs: the hub that receives fan-out messages and
owns the process's delivery, presence and operations state.

May import: every package above it: conf, observability, wire, _internal, backends, commands,
schema, streams, delivery, presence, ops.
"""

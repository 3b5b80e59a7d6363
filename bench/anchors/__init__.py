"""Anchors: other projects' servers measured by the same load generator in the same rounds.

python-socketio (under uvicorn; two processes on Redis for broadcasts) and Node.js Socket.IO 4
(one process), in the echo and broadcast scenarios. ``make bench`` installs both
(bench/requirements.txt, ``npm ci`` in bench/anchors/node); an anchor that is not installed is
left out, and the report says what to install.

- :mod:`.socketio_app` and ``node/server.js``: the servers, the same two events.
- :mod:`.servers`: their processes, what is missing, their versions.
- :mod:`.client`: the load generator's Socket.IO adapter.
- :mod:`.triggers`: how the broadcast scenario makes each one broadcast.
- :mod:`.report`: their rows and ratios in docs/benchmarks.md.
- :mod:`.raw_picows`: a picows server with ``json.loads``/``json.dumps`` and nothing else,
  echo and a one-process broadcast: the floor the engine (bench/engine.py) is measured
  against.
"""

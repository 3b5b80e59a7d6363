// The Node.js Socket.IO 4 anchor of the benchmark (bench/anchors/): one process, WebSocket
// transport only, the same two events as bench/anchors/socketio_app.py.
//
//   node bench/anchors/node/server.js PORT
//
// - "echo": acknowledged with its argument (the load generator sends 42<id>["echo",{...}] and
//   times the 43<id>[{...}] that answers it).
// - "broadcast": emits "bench" with its argument to every connected client; the benchmark's
//   trigger connection sends it (one process: no adapter, no broker).
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.js PORT");
  process.exit(2);
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  // The load generator speaks WebSocket from the first request on (no polling upgrade).
  transports: ["websocket"],
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("broadcast", (data) => {
    io.emit("bench", data);
  });
});

// A listen backlog for the connection bursts, as the Python servers get.
httpServer.listen({ port, host: "127.0.0.1", backlog: 2048 });
process.on("SIGTERM", () => process.exit(0));

// A stand-in for the browser's WebSocket, driven by the test (node has no server here):
// the client under test talks to it through the `WebSocket` option.
import { afterEach, beforeEach } from "node:test";

import { WSCommands } from "../../wscommands/static/wscommands/wscommands.js";

/** Reconnect options that keep tests quick: 1, 2, 4, 5 ms. */
export const fast = { initialDelay: 1, maxDelay: 5, factor: 2, jitter: 0 };

export class FakeSocket {
  static instances = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.instances.push(this);
  }

  static reset() {
    FakeSocket.instances = [];
  }

  static get last() {
    return FakeSocket.instances.at(-1);
  }

  send(text) {
    if (this.closedWith) throw new Error("send on a closed socket");
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000, reason = "") {
    this.closedWith = { code, reason };
  }

  // What the server does --------------------------------------------------------------------

  open() {
    this.onopen?.({});
  }

  message(obj) {
    this.onmessage?.({ data: typeof obj === "string" ? obj : JSON.stringify(obj) });
  }

  serverClose(code, reason = "") {
    this.closedWith = { code, reason };
    this.onclose?.({ code, reason });
  }

  /** Answer the last request sent with `reply` plus its request_id. */
  reply(reply) {
    const request = this.sent.at(-1);
    this.message({ ...reply, request_id: request.request_id });
  }
}

/** Resolve once `predicate()` holds (polled every few ms), or fail after `ms`. */
export async function until(predicate, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Let pending promise callbacks and timers of 0 ms run. */
export function tick() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * `client(options)` and `ready(options)` for a test file, on fake sockets; every client is
 * closed after each test (no timers left behind, even when a test failed).
 */
export function useClients() {
  let clients = [];
  beforeEach(() => FakeSocket.reset());
  afterEach(() => {
    for (const c of clients) c.close();
    clients = [];
  });
  const client = (options = {}) => {
    const c = new WSCommands("ws://server/ws/", { WebSocket: FakeSocket, reconnect: fast, ...options });
    clients.push(c);
    return c;
  };
  const ready = async (options = {}) => {
    const c = client(options);
    FakeSocket.last.open();
    await c.connect();
    return c;
  };
  return { client, ready };
}

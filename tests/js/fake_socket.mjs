// A stand-in for the browser's WebSocket, driven by the test (node has no server here):
// the client under test talks to it through the `WebSocket` option.

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

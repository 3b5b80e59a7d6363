// Calls across a reconnect: queued calls wait for the onready handlers; a call whose reply
// was lost fails with "disconnected" unless idempotent, then it is sent again with its key.
// And the browser's online/offline events.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { FakeSocket, fast, tick, until, useClients } from "./fake_socket.mjs";

const { client, ready } = useClients();

const names = (socket) => socket.sent.map((m) => Object.keys(m).filter((k) => k !== "request_id" && k !== "idempotency_key").join("+"));

test("the README snippet: a call queued before connecting waits for the onready handler's join", async () => {
  const c = client();
  c.onready(() => c.call("chat.join", { room: "lobby" }));
  const say = c.call("chat.say", { room: "lobby", text: "hi" });
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  assert.deepEqual(names(FakeSocket.last), ["chat.join"]);
  await tick();
  assert.deepEqual(names(FakeSocket.last), ["chat.join"], "chat.say waits for the join's reply");
  assert.equal(c.state, "preparing");
  FakeSocket.last.reply({ "chat.join": { room: "lobby" } });
  await until(() => FakeSocket.last.sent.length === 2);
  assert.deepEqual(names(FakeSocket.last), ["chat.join", "chat.say"]);
  FakeSocket.last.reply({});
  assert.equal(await say, undefined);
});

test("after a reconnect, queued calls wait for every onready handler, async ones included", async () => {
  const c = await ready();
  const order = [];
  let release;
  c.onready(async () => {
    order.push("first handler");
    await new Promise((resolve) => (release = resolve));
    await c.call("chat.join", { room: "lobby" });
    order.push("joined");
  });
  c.onready(() => order.push("second handler"));
  await tick();
  order.length = 0; // registered while ready: they ran once already
  c.call("chat.join", {}).catch(() => {});
  FakeSocket.last.reply({});
  FakeSocket.last.serverClose(1006);
  const typed = c.call("chat.say", { room: "lobby", text: "typed while away" });
  const connected = c.connect();
  FakeSocket.last.open();
  await until(() => order.length === 2);
  assert.deepEqual(order, ["first handler", "second handler"]);
  release();
  await until(() => FakeSocket.last.sent.length === 1);
  assert.deepEqual(names(FakeSocket.last), ["chat.join"]);
  assert.equal(c.is_connected(), false, "not ready while the handlers run");
  FakeSocket.last.reply({});
  await connected;
  assert.deepEqual(order, ["first handler", "second handler", "joined"]);
  assert.deepEqual(names(FakeSocket.last), ["chat.join", "chat.say"]);
  FakeSocket.last.reply({});
  await typed;
});

test("a failing onready handler does not hold the queue back", async () => {
  const c = client();
  const reported = [];
  const original = console.error;
  console.error = (e) => reported.push(e.message);
  try {
    c.onready(async () => {
      throw new Error("join refused");
    });
    const queued = c.call("echo", { text: "x" });
    FakeSocket.last.open();
    await until(() => FakeSocket.last.sent.length === 1);
    FakeSocket.last.reply({ echo: "x" });
    assert.equal(await queued, "x");
  } finally {
    console.error = original;
  }
  assert.deepEqual(reported, ["join refused"]);
});

test("a call whose reply was lost in a drop rejects with disconnected and is not sent again", async () => {
  const c = await ready();
  const lost = c.call("chat.say", { room: "lobby", text: "once" });
  assert.equal(FakeSocket.last.sent[0].idempotency_key, undefined);
  FakeSocket.last.serverClose(1006);
  await assert.rejects(lost, { code: "disconnected", details: { close_code: 1006 } });
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  await c.connect();
  await tick();
  assert.deepEqual(FakeSocket.last.sent, []);
});

test("an idempotent call is sent again with the same key after reconnect and onready", async () => {
  const c = await ready();
  const joined = [];
  const call = c.call("counter.get", null, { idempotent: true });
  const [first] = FakeSocket.last.sent;
  assert.match(first.idempotency_key, /^[0-9a-f]{32}$/);
  FakeSocket.last.serverClose(1006);
  c.onready(() => c.call("chat.join", { room: "lobby" }).then(() => joined.push("lobby")));
  const queued = c.call("echo", { text: "queued" });
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  assert.deepEqual(names(FakeSocket.last), ["chat.join"], "the retry waits for onready");
  FakeSocket.last.reply({});
  await until(() => FakeSocket.last.sent.length === 3);
  const [, retry, after] = FakeSocket.last.sent;
  assert.deepEqual(retry, first, "same frame: same key, same request_id");
  assert.deepEqual(names(FakeSocket.last), ["chat.join", "counter.get", "echo"]);
  FakeSocket.last.message({ "counter.get": 41, request_id: retry.request_id });
  FakeSocket.last.message({ echo: "queued", request_id: after.request_id });
  assert.equal(await call, 41);
  assert.equal(await queued, "queued");
  assert.deepEqual(joined, ["lobby"]);
});

test("the idempotent option names commands; a request is idempotent when all its commands are", async () => {
  const c = await ready({ idempotent: ["counter.get", "presence.list"] });
  c.call("counter.get").catch(() => {});
  c.call("counter.increment").catch(() => {});
  c.request({ "counter.get": null, "presence.list": null }).catch(() => {});
  c.request({ "counter.get": null, "counter.increment": null }).catch(() => {});
  c.call("counter.get", null, { idempotent: false }).catch(() => {});
  const keys = FakeSocket.last.sent.map((m) => typeof m.idempotency_key === "string");
  assert.deepEqual(keys, [true, false, true, false, false]);
  const all = FakeSocket.last.sent.map((m) => m.idempotency_key).filter(Boolean);
  assert.equal(new Set(all).size, 2, "a key per request");
  await assert.rejects(c.request({ idempotency_key: "x".repeat(20) }), TypeError);
});

test("an idempotent call still times out, and close() rejects it while it waits to be retried", async () => {
  const c = await ready();
  const slow = c.call("report", null, { idempotent: true, timeout: 20 });
  const other = c.call("report", null, { idempotent: true });
  FakeSocket.last.serverClose(1006);
  await assert.rejects(slow, { code: "timeout" });
  c.close();
  await assert.rejects(other, { code: "disconnected" });
});

// The browser's online/offline events ----------------------------------------------------------

let onLine = true;

beforeEach(() => {
  onLine = true;
  globalThis.window = new EventTarget();
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    get: () => ({ onLine }),
  });
});

afterEach(() => {
  delete globalThis.window;
  delete globalThis.navigator;
});

function network(online) {
  onLine = online;
  globalThis.window.dispatchEvent(new Event(online ? "online" : "offline"));
}

const slow = { initialDelay: 60000, maxDelay: 60000, factor: 2, jitter: 0 };

test("online: a client waiting to reconnect tries at once", async () => {
  const c = await ready({ reconnect: slow });
  FakeSocket.last.serverClose(1006);
  assert.equal(c.state, "waiting");
  network(true);
  assert.equal(FakeSocket.instances.length, 2, "no 60 s wait");
  FakeSocket.last.open();
  await c.connect();
});

test("offline: no attempts are spent while the browser has no network", async () => {
  const c = await ready({ reconnect: { ...fast, maxAttempts: 2 } });
  const closes = [];
  c.onclose((info) => closes.push(info));
  onLine = false;
  FakeSocket.last.serverClose(1006);
  assert.equal(c.state, "offline");
  await new Promise((resolve) => setTimeout(resolve, 30)); // far past every backoff delay
  assert.equal(FakeSocket.instances.length, 1, "no attempt while offline");
  assert.equal(c.attempt, 0);
  assert.deepEqual(closes, [{ code: 1006, reason: "", reconnecting: true, delay: null }]);
  network(true);
  assert.equal(FakeSocket.instances.length, 2);
  FakeSocket.last.open();
  await c.connect();
});

test("offline while waiting cancels the timer; online reconnects", async () => {
  const c = await ready({ reconnect: { ...fast, initialDelay: 20 } });
  FakeSocket.last.serverClose(1006);
  network(false);
  assert.equal(c.state, "offline");
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.equal(FakeSocket.instances.length, 1);
  network(true);
  assert.equal(FakeSocket.instances.length, 2);
});

test("a network change under an open socket checks it with a heartbeat at once", async () => {
  const c = await ready({ heartbeat: { interval: 60000, timeout: 10 } });
  network(false);
  assert.match(FakeSocket.last.sent[0]?.request_id, /^hb-\d+$/);
  await until(() => c.state === "offline", 1000);
  assert.equal(FakeSocket.last.closedWith.reason, "heartbeat timeout");
  assert.equal(FakeSocket.instances.length, 1, "no attempt while offline");
  network(true);
  assert.equal(FakeSocket.instances.length, 2);
});

// The WSCommands state machine against a scripted socket: calls, pushes, queueing,
// reconnection, authentication and the heartbeat.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeSocket, fast, until, useClients } from "./fake_socket.mjs";

const { client, ready } = useClients();

test("call sends one request with a request_id and resolves with the command's result", async () => {
  const c = await ready();
  const result = c.call("echo", { text: "hi" });
  assert.deepEqual(FakeSocket.last.sent, [{ echo: { text: "hi" }, request_id: 1 }]);
  FakeSocket.last.reply({ echo: { text: "hi" } });
  assert.deepEqual(await result, { text: "hi" });
  c.close();
});

test("replies are matched by request_id, not by order", async () => {
  const c = await ready();
  const a = c.call("report", { year: 1 });
  const b = c.call("echo", { text: "b" });
  FakeSocket.last.message({ echo: "B", request_id: 2 });
  FakeSocket.last.message({ report: "A", request_id: 1 });
  assert.deepEqual([await a, await b], ["A", "B"]);
  c.close();
});

test("call rejects with code, message and details; request resolves with the whole reply", async () => {
  const c = await ready();
  const failing = c.call("nope");
  const entry = { code: "unknown_command", message: "unknown command: nope" };
  FakeSocket.last.reply({ errors: { nope: entry, unimplemented: ["nope"] } });
  await assert.rejects(failing, { code: "unknown_command", message: entry.message });

  const whole = c.request({ add: { a: 1, b: 2 }, div: { a: 1 } });
  const reply = {
    add: 3,
    errors: { div: { code: "invalid_arguments", message: "m", details: { missing: ["b"] } } },
  };
  FakeSocket.last.reply(reply);
  assert.deepEqual(await whole, { ...reply, request_id: 2 });
  c.close();
});

test("pushes go to on() listeners; once and off work; replies to calls do not", async () => {
  const c = await ready();
  const seen = [];
  const all = (v) => seen.push(["all", v]);
  c.on("chat_message", all);
  c.on("chat_message", (v) => seen.push(["once", v]), { once: true });
  FakeSocket.last.message({ chat_message: { text: 1 } });
  FakeSocket.last.message({ chat_message: { text: 2 } });
  const call = c.call("chat_message", {}, { timeout: 5 });
  await assert.rejects(call, { code: "timeout" });
  FakeSocket.last.message({ chat_message: { text: "late reply" }, request_id: 1 });
  c.off("chat_message", all);
  FakeSocket.last.message({ chat_message: { text: 3 } });
  assert.deepEqual(seen, [
    ["all", { text: 1 }],
    ["once", { text: 1 }],
    ["all", { text: 2 }],
  ]);
  c.close();
});

test("an errors.request reply without our request_id goes to onerror", async () => {
  const c = await ready();
  const errors = [];
  c.onerror((e) => errors.push(e.code));
  c.send("not an object");
  FakeSocket.last.message({ errors: { request: { code: "invalid_request", message: "m" } } });
  assert.deepEqual(errors, ["invalid_request"]);
  c.close();
});

test("calls made while disconnected wait, bounded, and go out once connected", async () => {
  const c = client({ queue: 2 });
  const a = c.call("echo", { text: "a" });
  const b = c.call("echo", { text: "b" });
  await assert.rejects(c.call("echo", { text: "c" }), { code: "disconnected" });
  assert.deepEqual(FakeSocket.last.sent, []);
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 2);
  FakeSocket.last.message({ echo: "A", request_id: 1 });
  FakeSocket.last.message({ echo: "B", request_id: 2 });
  assert.deepEqual([await a, await b], ["A", "B"]);
  c.close();
});

test("a dropped connection fails calls in flight and reconnects; onready runs again", async () => {
  const c = client();
  let readies = 0;
  const closes = [];
  c.onready(() => readies++);
  c.onclose((info) => closes.push(info));
  FakeSocket.last.open();
  await until(() => readies === 1);
  const inFlight = c.call("sleep", { seconds: 5 });
  const first = FakeSocket.last;
  first.serverClose(1006);
  await assert.rejects(inFlight, { code: "disconnected", details: { close_code: 1006 } });
  assert.equal(c.is_connected(), false);
  assert.deepEqual(closes, [{ code: 1006, reason: "", reconnecting: true, delay: 1 }]);
  const queued = c.call("echo", { text: "after" });
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  await c.connect();
  assert.equal(readies, 2);
  assert.equal(c.attempt, 0, "backoff starts over once connected");
  FakeSocket.last.reply({ echo: "after" });
  assert.equal(await queued, "after");
  c.close();
});

test("connect() rejects when its attempt fails; the client retries with growing backoff", async () => {
  const c = client({ reconnect: { ...fast, maxAttempts: 3 }, autoConnect: false });
  const events = [];
  c.onconnecting(({ attempt }) => events.push(["connecting", attempt]));
  c.onreconnecting(({ attempt, delay }) => events.push(["reconnecting", attempt, delay]));
  c.onattemptfailed(({ attempt, code, error }) => events.push(["failed", attempt, code, error.code]));
  const delays = [];
  c.onclose((info) => delays.push(info.delay));
  const first = c.connect();
  FakeSocket.last.serverClose(1006);
  await assert.rejects(first, { code: "connect_failed", details: { close_code: 1006 } });
  for (let i = 1; i < 4; i++) {
    await until(() => FakeSocket.instances.length === i + 1);
    FakeSocket.last.serverClose(1006);
  }
  assert.deepEqual(delays, [1, 2, 4, null], "maxAttempts retries, then gives up");
  assert.deepEqual(events, [
    ["connecting", 0],
    ["failed", 0, 1006, "connect_failed"],
    ["reconnecting", 1, 1],
    ["connecting", 1],
    ["failed", 1, 1006, "connect_failed"],
    ["reconnecting", 2, 2],
    ["connecting", 2],
    ["failed", 2, 1006, "connect_failed"],
    ["reconnecting", 3, 4],
    ["connecting", 3],
    ["failed", 3, 1006, "connect_failed"],
  ]);
  assert.equal(c.state, "closed");
  await assert.rejects(c.call("echo", { text: "x" }), { code: "disconnected" });
});

test("connect() while waiting to reconnect tries at once, and settles with that attempt", async () => {
  const c = await ready({ reconnect: { ...fast, initialDelay: 60000, maxDelay: 60000 } });
  FakeSocket.last.serverClose(1006);
  assert.equal(c.state, "waiting");
  const now = c.connect();
  assert.equal(FakeSocket.instances.length, 2, "no 60 s wait");
  FakeSocket.last.open();
  assert.equal(await now, c);
  assert.equal(c.state, "ready");
});

test("4503 (restarting) reconnects; close() stops for good", async () => {
  const c = await ready();
  FakeSocket.last.serverClose(4503);
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  await c.connect();
  c.close();
  assert.equal(c.state, "closed");
  assert.deepEqual(FakeSocket.last.closedWith, { code: 1000, reason: "" });
  assert.equal(FakeSocket.instances.length, 2);
});

test("session_id flow: authenticate is sent first and calls wait for it", async () => {
  const c = client({ authenticate: async () => "key-1" });
  const call = c.call("whoami");
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  const [auth] = FakeSocket.last.sent;
  assert.deepEqual(auth.authenticate, { session_id: "key-1" });
  assert.equal(c.is_authenticated(), false);
  const user = { id: 7, username: "ann" };
  FakeSocket.last.message({
    authenticate: { authenticate: "success", user },
    request_id: auth.request_id,
  });
  await until(() => FakeSocket.last.sent.length === 2);
  assert.equal(c.is_authenticated(), true);
  assert.deepEqual(c.user, user);
  FakeSocket.last.reply({ whoami: { username: "ann" } });
  assert.deepEqual(await call, { username: "ann" });
  c.close();
});

test("failed authentication (3000) rejects and does not reconnect", async () => {
  const c = client({ authenticate: () => "bad" });
  const errors = [];
  c.onerror((e) => errors.push([e.code, e.message]));
  const connecting = c.connect();
  const call = c.call("whoami");
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  const failure = { authenticate: "failure", message: "unknown or expired session" };
  FakeSocket.last.reply({ authenticate: failure });
  FakeSocket.last.serverClose(3000);
  await assert.rejects(connecting, { code: "authentication_failed" });
  await assert.rejects(call, { code: "authentication_failed" });
  assert.deepEqual(errors, [["authentication_failed", "unknown or expired session"]]);
  assert.equal(c.state, "closed");
  await new Promise((resolve) => setTimeout(resolve, 20)); // longer than any backoff here
  assert.equal(FakeSocket.instances.length, 1);
});

test("heartbeat: a silent connection is dropped and replaced", async () => {
  const c = await ready({ heartbeat: { interval: 5, timeout: 20 } });
  const first = FakeSocket.last;
  await until(() => first.sent.length >= 1);
  assert.match(first.sent[0].request_id, /^hb-\d+$/);
  assert.deepEqual(Object.keys(first.sent[0]), ["request_id"]);
  first.reply({}); // answered: the connection stays
  await until(() => first.sent.length >= 2);
  assert.equal(FakeSocket.instances.length, 1);
  // no answer this time: closed and replaced
  await until(() => FakeSocket.instances.length === 2);
  assert.deepEqual(first.closedWith, { code: 1000, reason: "heartbeat timeout" });
  assert.equal(c.state, "connecting");
  c.close();
});

test("connect timeout: connect() rejects with timeout and the handshake is retried", async () => {
  const c = client({ connectTimeout: 10, autoConnect: false });
  await assert.rejects(c.connect(), { code: "timeout" });
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  await c.connect();
  c.close();
});

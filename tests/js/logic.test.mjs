// Pure logic of the client: backoff, listeners, request/reply matching, close policy.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  CLOSE,
  Emitter,
  PendingRequests,
  RATE_LIMITED_DELAY,
  WSCommandsError,
  backoffDelay,
  closePolicy,
  resultOf,
  withDefaults,
} from "../../wscommands/static/wscommands/wscommands.js";
import { CLASSIC, MODULE, classicFrom } from "./build_classic.mjs";

const opts = { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };

test("backoff doubles from the initial delay up to the maximum", () => {
  const none = () => 0; // no jitter taken off
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, opts, none)),
    [100, 200, 400, 800, 1000, 1000, 1000],
  );
});

test("jitter takes up to its share off the delay", () => {
  assert.equal(backoffDelay(2, opts, () => 1), 200); // 400 - 50%
  assert.equal(backoffDelay(2, opts, () => 0.5), 300);
  assert.equal(backoffDelay(2, { ...opts, jitter: 0 }, () => 1), 400);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(3, opts);
    assert.ok(d >= 400 && d <= 800, `delay ${d}`);
  }
});

test("withDefaults accepts true, false and partial reconnect/heartbeat options", () => {
  assert.equal(withDefaults({ reconnect: false }).reconnect, false);
  assert.equal(withDefaults({ reconnect: true }).reconnect.maxDelay, 30000);
  const o = withDefaults({ reconnect: { maxDelay: 5 }, heartbeat: { interval: 7 } });
  assert.equal(o.reconnect.maxDelay, 5);
  assert.equal(o.reconnect.initialDelay, 500);
  assert.deepEqual(o.heartbeat, { interval: 7, timeout: 10000 });
});

test("listeners: once runs one time, off removes one or all", () => {
  const e = new Emitter();
  const calls = [];
  const a = (v) => calls.push(`a${v}`);
  const b = (v) => calls.push(`b${v}`);
  e.on("x", a);
  e.on("x", b, true);
  assert.equal(e.emit("x", 1), 2);
  assert.equal(e.emit("x", 2), 1);
  e.off("x", a);
  assert.equal(e.emit("x", 3), 0);
  e.on("x", a);
  e.on("x", b);
  e.off("x");
  assert.equal(e.emit("x", 4), 0);
  assert.deepEqual(calls, ["a1", "b1", "a2"]);
});

test("a throwing listener does not stop the others", () => {
  const e = new Emitter();
  const seen = [];
  const original = console.error;
  console.error = (err) => seen.push(err.message);
  try {
    e.on("x", () => {
      throw new Error("boom");
    });
    e.on("x", () => seen.push("second"));
    e.emit("x");
  } finally {
    console.error = original;
  }
  assert.deepEqual(seen, ["boom", "second"]);
});

test("replies settle the request with the same request_id, whatever the order", async () => {
  const p = new PendingRequests();
  const one = p.add(1);
  const two = p.add("two");
  assert.equal(p.settle({ request_id: "two", echo: 2 }), true);
  assert.equal(p.settle({ request_id: 1, echo: 1 }), true);
  assert.deepEqual(await one, { request_id: 1, echo: 1 });
  assert.deepEqual(await two, { request_id: "two", echo: 2 });
  assert.equal(p.settle({ request_id: 1 }), false, "a second reply matches nothing");
  assert.equal(p.settle({ chat_message: {} }), false, "a push matches nothing");
  assert.equal(p.size, 0);
});

test("a refused request (errors.request) rejects with the protocol's error", async () => {
  const p = new PendingRequests();
  const pending = p.add(5);
  const entry = { code: "invalid_request", message: "reserved key(s) in request: errors" };
  p.settle({ errors: { request: entry }, request_id: 5 });
  await assert.rejects(pending, { name: "WSCommandsError", code: "invalid_request" });
});

test("a request without a reply in time rejects with code timeout", async () => {
  const p = new PendingRequests();
  await assert.rejects(p.add(1, 10), { code: "timeout" });
  assert.equal(p.size, 0);
  assert.equal(p.settle({ request_id: 1 }), false, "a late reply matches nothing");
});

test("resultOf returns the result or throws the command's error entry", () => {
  const reply = {
    add: 3,
    errors: {
      div: { code: "invalid_arguments", message: "missing argument: b", details: { missing: ["b"] } },
    },
  };
  assert.equal(resultOf(reply, "add"), 3);
  assert.equal(resultOf({}, "say"), undefined, "a command that returned nothing");
  assert.throws(
    () => resultOf(reply, "div"),
    (err) => {
      assert.ok(err instanceof WSCommandsError);
      assert.equal(err.code, "invalid_arguments");
      assert.equal(err.message, "missing argument: b");
      assert.deepEqual(err.details, { missing: ["b"] });
      assert.equal(err.command, "div");
      return true;
    },
  );
});

test("close codes: 3000/3003/4401 stop, 4503 comes back within the delay, 4429 waits, others back off", () => {
  const r = { initialDelay: 100, maxDelay: 10000, factor: 2, jitter: 0 };
  const half = () => 0.5;
  assert.deepEqual(closePolicy(CLOSE.AUTHENTICATION_FAILED, 0, r), {
    reconnect: false,
    error: "authentication_failed",
  });
  assert.equal(closePolicy(CLOSE.FORBIDDEN, 0, r).reconnect, false);
  assert.deepEqual(closePolicy(CLOSE.SESSION_ENDED, 0, r), {
    reconnect: false,
    error: "session_ended",
  });
  assert.deepEqual(closePolicy(CLOSE.RESTARTING, 0, r, half), { reconnect: true, delay: 50 });
  assert.deepEqual(closePolicy(CLOSE.RESTARTING, 2, r, half), { reconnect: true, delay: 200 });
  assert.equal(closePolicy(CLOSE.TOO_MANY_REQUESTS, 0, r).delay, RATE_LIMITED_DELAY);
  assert.equal(closePolicy(CLOSE.TOO_MANY_REQUESTS, 0, r).error, "rate_limited");
  assert.equal(closePolicy(CLOSE.TOO_BIG, 1, r).error, "message_too_big");
  assert.equal(closePolicy(CLOSE.MESSAGE_TOO_BIG, 1, r).error, "message_too_big");
  assert.equal(closePolicy(CLOSE.BAD_REQUEST, 1, r).delay, 200);
  assert.deepEqual(closePolicy(1006, 3, r), { reconnect: true, delay: 800 });
});

test("the classic script is the module's code, regenerated", () => {
  const expected = classicFrom(readFileSync(MODULE, "utf8"));
  assert.equal(
    readFileSync(CLASSIC, "utf8"),
    expected,
    "wscommands.classic.js is stale: run `node tests/js/build_classic.mjs`",
  );
});

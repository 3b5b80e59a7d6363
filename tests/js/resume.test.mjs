// Resumable delivery, client side (docs/client.md "Resuming", docs/protocol.md "Resumable delivery"):
// positions per stream, duplicates dropped, gaps filled, the resume after a reconnect.
import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamPositions } from "../../wscommands/static/wscommands/wscommands.js";
import { FakeSocket, tick, until, useClients } from "./fake_socket.mjs";

const { client, ready } = useClients();

const at = (stream, offset, epoch = "e1") => ({ stream, epoch, offset });

// The bookkeeping alone --------------------------------------------------------------------------

test("positions: in order is new, seen is a duplicate, a jump is a gap, a new epoch says so", () => {
  const p = new StreamPositions();
  p.set("all", { epoch: "e1", offset: 40 });
  assert.equal(p.accept(at("all", 40)), "duplicate");
  assert.equal(p.accept(at("all", 41)), "new");
  assert.equal(p.accept(at("all", 41)), "duplicate");
  assert.equal(p.accept(at("all", 45)), "gap");
  assert.deepEqual(p.snapshot(), { all: { epoch: "e1", offset: 41 } }, "resume from before the gap");
  assert.equal(p.accept(at("all", 43)), "new", "fills the gap");
  assert.equal(p.accept(at("all", 43)), "duplicate");
  assert.equal(p.accept(at("all", 42)), "new");
  assert.equal(p.hasGap("all"), true, "44 still missing");
  assert.equal(p.accept(at("all", 44)), "new");
  assert.equal(p.hasGap("all"), false);
  assert.deepEqual(p.snapshot(), { all: { epoch: "e1", offset: 45 } });
  assert.equal(p.accept(at("all", 3, "e2")), "epoch");
  assert.deepEqual(p.snapshot(), { all: { epoch: "e2", offset: 3 } });
  assert.equal(p.accept(at("user:3", 9)), "new", "a stream first seen");
  assert.equal(p.accept({ stream: "all", epoch: 1, offset: 4 }), "untracked");
  assert.equal(p.accept({ epoch: "e2", offset: 4 }), "untracked");
  p.set("user:3", null);
  assert.equal(p.has("user:3"), false);
});

test("positions: a resume verdict settles the stream and says what to resync", () => {
  const p = new StreamPositions();
  p.set("all", { epoch: "e1", offset: 40 });
  p.set("group:lobby", { epoch: "e4", offset: 17 });
  p.set("user:3", { epoch: "e9", offset: 2 });
  p.set("group:help", { epoch: "e2", offset: 5 });
  p.accept(at("all", 42)); // 41 missing
  p.accept(at("all", 41)); // replayed
  assert.equal(p.settle("all", { recovered: true, epoch: "e1", offset: 45 }), null);
  assert.deepEqual(p.snapshot().all, { epoch: "e1", offset: 45 });
  const lost = { recovered: false, reason: "history_lost", epoch: "e5", offset: 3 };
  assert.equal(p.settle("group:lobby", lost), "history_lost");
  assert.deepEqual(p.snapshot()["group:lobby"], { epoch: "e5", offset: 3 });
  assert.equal(p.settle("user:3", { recovered: false, reason: "forbidden" }), null);
  assert.equal(p.has("user:3"), false, "forbidden: forgotten, no resync");
  const behind = { recovered: false, reason: "too_far_behind", epoch: "e2", offset: 900 };
  assert.equal(p.settle("group:help", behind), "too_far_behind");
  p.accept(at("group:help", 903)); // 901-902 missing
  assert.equal(
    p.settle("group:help", { recovered: true, epoch: "e2", offset: 903 }),
    "resume_failed",
    "said recovered, but the missing offsets never came: never a silent gap",
  );
  assert.equal(p.hasGap("group:help"), false);
});

// Against a scripted server ----------------------------------------------------------------------

const streamsOf = { all: { epoch: "e1", offset: 40 }, "user:3": { epoch: "e9", offset: 2 } };

/** A resumable client that has seen `all` up to 42, `user:3` at 2 and `group:lobby` at 17. */
async function resumable(options = {}) {
  const c = await ready({ resume: true, ...options });
  const seen = [];
  c.on("chat_message", (m) => seen.push(m.text));
  c.on("counter", (m) => seen.push(`counter ${m.value}`));
  FakeSocket.last.message({ "wscommands.streams": streamsOf });
  FakeSocket.last.message({ "wscommands.streams": { "group:lobby": { epoch: "e4", offset: 17 } } });
  FakeSocket.last.message({ counter: { value: 1 }, "wscommands.position": at("all", 41) });
  FakeSocket.last.message({ counter: { value: 2 }, "wscommands.position": at("all", 42) });
  return { c, seen };
}

test("resume: opt in with ?resume=1; without it, the URL and the frames are as before", async () => {
  const plain = await ready();
  assert.equal(FakeSocket.last.url, `ws://server/ws/?client=${plain.clientId}`);
  plain.close();
  const c = await ready({ resume: true });
  assert.equal(FakeSocket.last.url, `ws://server/ws/?resume=1&client=${c.clientId}`);
  assert.deepEqual(FakeSocket.last.sent, [], "no resume on a first connect");
  c.close();
});

test("resume: reserved keys are never emitted; duplicates are dropped", async () => {
  const { c, seen } = await resumable();
  const reserved = [];
  for (const key of ["wscommands.position", "wscommands.streams", "wscommands.resume"]) {
    c.on(key, () => reserved.push(key));
  }
  FakeSocket.last.message({ counter: { value: 2 }, "wscommands.position": at("all", 42) });
  FakeSocket.last.message({ counter: { value: 3 }, "wscommands.position": at("all", 43) });
  FakeSocket.last.message({ "wscommands.streams": { "group:x": { epoch: "e", offset: 1 } } });
  assert.deepEqual(seen, ["counter 1", "counter 2", "counter 3"]);
  assert.deepEqual(reserved, []);
});

test("resume: after a reconnect the first frame resumes, missed pushes come, then onready", async () => {
  const { c, seen } = await resumable();
  const events = [];
  c.onresync((e) => events.push(["resync", e.stream, e.reason]));
  c.onresumed((verdicts) => events.push(["resumed", Object.keys(verdicts).sort()]));
  c.onready(() => {
    events.push(["ready"]);
    return c.call("chat.join", { room: "help" });
  });
  await tick();
  events.length = 0;
  FakeSocket.last.reply({}); // the join made by onready on registration
  FakeSocket.last.serverClose(1006);
  const queued = c.call("chat.say", { room: "lobby", text: "typed while away" });
  await until(() => FakeSocket.instances.length === 2);
  const socket = FakeSocket.last;
  socket.open();
  assert.equal(c.state, "resuming");
  assert.equal(socket.sent.length, 1);
  const [resume] = socket.sent;
  assert.deepEqual(resume["wscommands.resume"], {
    streams: {
      all: { epoch: "e1", offset: 42 },
      "user:3": { epoch: "e9", offset: 2 },
      "group:lobby": { epoch: "e4", offset: 17 },
    },
  });
  assert.match(resume.request_id, /^resume-\d+$/);
  // The server announces its current positions right after accept: not taken for these.
  socket.message({ "wscommands.streams": { all: { epoch: "e1", offset: 44 } } });
  socket.message({ chat_message: { text: "missed 18" }, "wscommands.position": at("group:lobby", 18, "e4") });
  socket.message({ counter: { value: 3 }, "wscommands.position": at("all", 43) });
  socket.message({ counter: { value: 4 }, "wscommands.position": at("all", 44) });
  await tick();
  assert.equal(socket.sent.length, 1, "nothing else before the resume's reply");
  socket.message({
    "wscommands.resume": {
      all: { recovered: true, epoch: "e1", offset: 44 },
      "group:lobby": { recovered: true, epoch: "e4", offset: 18 },
      "user:3": { recovered: false, reason: "too_far_behind", epoch: "e9", offset: 700 },
    },
    request_id: resume.request_id,
  });
  await until(() => socket.sent.length === 2);
  assert.deepEqual(events, [
    ["resync", "user:3", "too_far_behind"],
    ["resumed", ["all", "group:lobby", "user:3"]],
    ["ready"],
  ]);
  assert.deepEqual(Object.keys(socket.sent[1]), ["chat.join", "request_id"]);
  socket.reply({});
  await until(() => socket.sent.length === 3);
  assert.deepEqual(socket.sent[2]["chat.say"], { room: "lobby", text: "typed while away" });
  socket.reply({});
  await queued;
  assert.deepEqual(seen, ["counter 1", "counter 2", "missed 18", "counter 3", "counter 4"]);
  // Live again: 45 follows 44; 44 again is a duplicate.
  socket.message({ counter: { value: 4 }, "wscommands.position": at("all", 44) });
  socket.message({ counter: { value: 5 }, "wscommands.position": at("all", 45) });
  socket.message({ chat_message: { text: "live 701" }, "wscommands.position": at("user:3", 701, "e9") });
  assert.deepEqual(seen.slice(5), ["counter 5", "live 701"]);
  assert.equal(socket.sent.length, 3, "no gap: nothing asked");
});

test("resume: a live push that overtakes the replay is let out after it, in offset order", async () => {
  const { c, seen } = await resumable();
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 2);
  const socket = FakeSocket.last;
  socket.open();
  const [resume] = socket.sent;
  // Sent live before the server read the resume request: 45 comes ahead of the replay.
  socket.message({ counter: { value: 5 }, "wscommands.position": at("all", 45) });
  socket.message({ counter: { value: 3 }, "wscommands.position": at("all", 43) });
  socket.message({ counter: { value: 4 }, "wscommands.position": at("all", 44) });
  socket.message({ counter: { value: 5 }, "wscommands.position": at("all", 45) }); // replayed
  await tick();
  assert.deepEqual(seen, ["counter 1", "counter 2"], "held until the resume's reply");
  socket.message({
    "wscommands.resume": { all: { recovered: true, epoch: "e1", offset: 45 } },
    request_id: resume.request_id,
  });
  await tick();
  assert.deepEqual(seen, ["counter 1", "counter 2", "counter 3", "counter 4", "counter 5"]);
  socket.message({ counter: { value: 6 }, "wscommands.position": at("all", 46) });
  assert.deepEqual(seen.slice(5), ["counter 6"]);
  c.close();
});

test("resume: history lost and forbidden streams; only the lost one fires resync", async () => {
  const { c } = await resumable();
  const resyncs = [];
  c.onresync((e) => resyncs.push(e));
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  FakeSocket.last.reply({
    "wscommands.resume": {
      all: { recovered: true, epoch: "e1", offset: 42 },
      "group:lobby": { recovered: false, reason: "history_lost", epoch: "e5", offset: 3 },
      "user:3": { recovered: false, reason: "forbidden" },
    },
  });
  await c.connect();
  assert.deepEqual(resyncs, [{ stream: "group:lobby", reason: "history_lost" }]);
  // The next resume names the new epoch and no longer the forbidden stream.
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 3);
  FakeSocket.last.open();
  assert.deepEqual(FakeSocket.last.sent[0]["wscommands.resume"].streams, {
    all: { epoch: "e1", offset: 42 },
    "group:lobby": { epoch: "e5", offset: 3 },
  });
});

test("resume refused by the server: an error, resync for every stream, and the client goes on", async () => {
  const { c } = await resumable();
  const resyncs = [];
  const errors = [];
  c.onresync((e) => resyncs.push(`${e.stream} ${e.reason}`));
  c.onerror((e) => errors.push(`${e.code}: ${e.message}`));
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  const entry = { code: "client_error", message: "connect with ?resume=1" };
  FakeSocket.last.reply({ errors: { "wscommands.resume": entry } });
  await c.connect();
  assert.deepEqual(errors, ["client_error: connect with ?resume=1"]);
  assert.deepEqual(resyncs.sort(), [
    "all resume_failed",
    "group:lobby resume_failed",
    "user:3 resume_failed",
  ]);
});

test("resume: a leave (null) forgets the stream", async () => {
  const { c } = await resumable();
  FakeSocket.last.message({ "wscommands.streams": { "group:lobby": null } });
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  assert.deepEqual(Object.keys(FakeSocket.last.sent[0]["wscommands.resume"].streams).sort(), [
    "all",
    "user:3",
  ]);
  c.close();
});

test("gap: the push is emitted, the missing range is asked for that stream alone, then filled", async () => {
  const { c, seen } = await resumable();
  const socket = FakeSocket.last;
  const resyncs = [];
  c.onresync((e) => resyncs.push(e));
  socket.message({ counter: { value: 5 }, "wscommands.position": at("all", 45) });
  assert.equal(socket.sent.length, 1);
  const [fill] = socket.sent;
  assert.deepEqual(fill["wscommands.resume"], { streams: { all: { epoch: "e1", offset: 42 } } });
  socket.message({ counter: { value: 6 }, "wscommands.position": at("all", 47) });
  assert.equal(socket.sent.length, 1, "one fill per stream at a time");
  for (const offset of [43, 44, 45, 46, 47]) {
    socket.message({ counter: { value: offset - 40 }, "wscommands.position": at("all", offset) });
  }
  socket.message({
    "wscommands.resume": { all: { recovered: true, epoch: "e1", offset: 47 } },
    request_id: fill.request_id,
  });
  assert.deepEqual(seen, ["counter 1", "counter 2", "counter 5", "counter 6", "counter 3", "counter 4", "counter 6"]);
  assert.deepEqual(resyncs, []);
  assert.equal(socket.sent.length, 1);
  socket.message({ counter: { value: 8 }, "wscommands.position": at("all", 48) });
  assert.equal(socket.sent.length, 1, "no gap left: nothing asked");
});

test("gap: history gone for the range fires resync", async () => {
  const { c } = await resumable();
  const resyncs = [];
  c.onresync((e) => resyncs.push(e));
  FakeSocket.last.message({ counter: { value: 9 }, "wscommands.position": at("all", 90) });
  FakeSocket.last.reply({
    "wscommands.resume": { all: { recovered: false, reason: "too_far_behind", epoch: "e1", offset: 90 } },
  });
  assert.deepEqual(resyncs, [{ stream: "all", reason: "too_far_behind" }]);
  FakeSocket.last.message({ counter: { value: 9 }, "wscommands.position": at("all", 91) });
  assert.equal(FakeSocket.last.sent.length, 1, "no fill asked again");
});

test("a push in a new epoch fires resync (history lost between two pushes)", async () => {
  const { c, seen } = await resumable();
  const resyncs = [];
  c.onresync((e) => resyncs.push(e));
  FakeSocket.last.message({ counter: { value: 0 }, "wscommands.position": at("all", 1, "e2") });
  assert.deepEqual(seen.at(-1), "counter 0");
  assert.deepEqual(resyncs, [{ stream: "all", reason: "history_lost" }]);
  assert.equal(FakeSocket.last.sent.length, 0);
});

test("session_id flow: authenticate first, then the resume, from positions taken at open", async () => {
  const c = client({ resume: true, authenticate: () => "key" });
  const success = { authenticate: { authenticate: "success", user: { id: 3, username: "ann" } } };
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  FakeSocket.last.reply(success);
  await c.connect();
  FakeSocket.last.message({ "wscommands.streams": streamsOf });
  FakeSocket.last.message({ counter: { value: 1 }, "wscommands.position": at("all", 41) });
  FakeSocket.last.message({ counter: { value: 2 }, "wscommands.position": at("all", 42) });
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 2);
  const socket = FakeSocket.last;
  socket.open();
  await until(() => socket.sent.length === 1);
  assert.ok("authenticate" in socket.sent[0]);
  // Before authenticate's reply: the server's announcement and a live push move nothing back.
  socket.message({ "wscommands.streams": { all: { epoch: "e1", offset: 50 } } });
  socket.message({ counter: { value: 50 }, "wscommands.position": at("all", 50) });
  socket.message({ ...success, request_id: socket.sent[0].request_id });
  assert.equal(socket.sent.length, 2);
  assert.deepEqual(socket.sent[1]["wscommands.resume"].streams.all, { epoch: "e1", offset: 42 });
  c.close();
});

test("resume: more streams than one request may name go in several; onready after the last reply", async () => {
  const c = await ready({ resume: true });
  const groups = {};
  for (let i = 0; i < 150; i++) groups[`group:g${i}`] = { epoch: "e", offset: i + 1 };
  FakeSocket.last.message({ "wscommands.streams": groups });
  let verdicts = null;
  let readies = 0;
  c.onresumed((v) => (verdicts = v));
  c.onready(() => readies++);
  await tick();
  readies = 0;
  FakeSocket.last.serverClose(1006);
  await until(() => FakeSocket.instances.length === 2);
  const socket = FakeSocket.last;
  socket.open();
  const requests = socket.sent.map((m) => Object.keys(m["wscommands.resume"].streams));
  assert.deepEqual(requests.map((r) => r.length), [100, 50]);
  const answer = (request) => ({
    "wscommands.resume": Object.fromEntries(
      Object.entries(request["wscommands.resume"].streams).map(([s, p]) => [s, { recovered: true, ...p }]),
    ),
    request_id: request.request_id,
  });
  socket.message(answer(socket.sent[1]));
  await tick();
  assert.equal(c.state, "resuming");
  assert.equal(readies, 0);
  socket.message(answer(socket.sent[0]));
  await c.connect();
  assert.equal(readies, 1);
  assert.equal(Object.keys(verdicts).length, 150);
});

test("a position alone (a push this connection was excluded from) moves the stream on silently", async () => {
  const { c, seen } = await resumable();
  const before = seen.length;
  FakeSocket.last.message({ "wscommands.position": at("all", 43) });
  FakeSocket.last.message({ counter: { value: 4 }, "wscommands.position": at("all", 44) });
  assert.deepEqual(seen.slice(before), ["counter 4"]);
  assert.equal(FakeSocket.last.sent.length, 0, "no false gap");
  c.close();
});

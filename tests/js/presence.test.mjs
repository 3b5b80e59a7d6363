// The Presence helper against a scripted socket: state on (re)connect, diffs merged per user,
// guests counted per process, no ghost joins.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { Presence, WSCommands } from "../../wscommands/static/wscommands/wscommands.js";
import { FakeSocket, until } from "./fake_socket.mjs";

const fast = { initialDelay: 1, maxDelay: 5, factor: 2, jitter: 0 };
let clients = [];

function client() {
  const c = new WSCommands("ws://server/ws/", { WebSocket: FakeSocket, reconnect: fast });
  clients.push(c);
  return c;
}

beforeEach(() => FakeSocket.reset());
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
});

function user(id, name, ...connections) {
  return { [String(id)]: { user_id: id, username: name, connections } };
}

function state(users = {}, guests = {}) {
  return { group: null, users, guests, count: {}, truncated: false };
}

function diff({ joins = {}, leaves = {}, guests = {}, group = null } = {}) {
  return { presence_diff: { group, joins, leaves, guests } };
}

/** A presence on a connected client whose state request was answered with `initial`. */
async function synced(initial, options = {}) {
  const c = client();
  const presence = new Presence(c, options);
  const events = [];
  presence.onJoin((key, current, joined) => events.push(["join", key, current?.connections ?? null, joined.connections]));
  presence.onLeave((key, current, left) => events.push(["leave", key, current?.connections ?? null, left.connections]));
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  FakeSocket.last.reply({ "presence.list": initial });
  await until(() => presence.synced);
  return { c, presence, events };
}

test("asks for the state when ready and reports who is there", async () => {
  const { presence, events } = await synced(state({ ...user(7, "ann", "a~1"), ...user(9, "bob", "b~1", "b~2") }, { a: 2, b: 1 }));
  assert.deepEqual(FakeSocket.last.sent[0], { "presence.list": {}, request_id: 1 });
  assert.deepEqual(presence.list(), [
    { user_id: 7, username: "ann", connections: ["a~1"] },
    { user_id: 9, username: "bob", connections: ["b~1", "b~2"] },
  ]);
  assert.deepEqual(presence.count(), { users: 2, guests: 3, connections: 6 });
  assert.deepEqual(events, [
    ["join", "7", null, ["a~1"]],
    ["join", "9", null, ["b~1", "b~2"]],
  ]);
});

test("diffs merge per user: a user joins with their first connection and leaves with their last", async () => {
  const { presence, events } = await synced(state());
  events.length = 0;
  FakeSocket.last.message(diff({ joins: user(7, "ann", "a~1") }));
  FakeSocket.last.message(diff({ joins: user(7, "ann", "b~5") })); // a second tab
  FakeSocket.last.message(diff({ joins: user(7, "ann", "b~5") })); // repeated: nothing
  FakeSocket.last.message(diff({ leaves: user(7, "ann", "a~1") }));
  FakeSocket.last.message(diff({ leaves: user(7, "ann", "a~1") })); // unknown: nothing
  FakeSocket.last.message(diff({ leaves: user(7, "ann", "b~5") }));
  assert.deepEqual(events, [
    ["join", "7", null, ["a~1"]],
    ["join", "7", ["a~1"], ["b~5"]],
    ["leave", "7", ["b~5"], ["a~1"]],
    ["leave", "7", null, ["b~5"]],
  ]);
  assert.deepEqual(presence.list(), []);
});

test("a user whose process died and who reconnected elsewhere joins once and never leaves", async () => {
  const { presence, events } = await synced(state(user(7, "ann", "dead~1")));
  const firstJoins = () => events.filter(([kind, , current]) => kind === "join" && current === null);
  const lastLeaves = () => events.filter(([kind, , current]) => kind === "leave" && current === null);
  assert.equal(firstJoins().length, 1);
  FakeSocket.last.message(diff({ joins: user(7, "ann", "alive~4") })); // her page, reconnected
  FakeSocket.last.message(diff({ leaves: user(7, "ann", "dead~1"), guests: { dead: 0 } })); // reaped
  assert.equal(firstJoins().length, 1);
  assert.equal(lastLeaves().length, 0);
  assert.deepEqual(presence.list(), [{ user_id: 7, username: "ann", connections: ["alive~4"] }]);
});

test("guests are absolute counts per process; 0 removes the process", async () => {
  const { presence } = await synced(state({}, { a: 3 }));
  FakeSocket.last.message(diff({ guests: { b: 2 } }));
  FakeSocket.last.message(diff({ guests: { a: 5 } }));
  assert.equal(presence.guests(), 7);
  FakeSocket.last.message(diff({ guests: { a: 0 } }));
  assert.equal(presence.guests(), 2);
  assert.deepEqual([...presence.guestsByProcess.keys()], ["b"]);
});

test("only its group's diffs apply, and diffs arriving during a sync are applied after it", async () => {
  const c = client();
  const presence = new Presence(c, { group: "lobby" });
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  assert.deepEqual(FakeSocket.last.sent[0]["presence.list"], { group: "lobby" });
  FakeSocket.last.message(diff({ group: "lobby", joins: user(9, "bob", "b~1") })); // before the state
  FakeSocket.last.message(diff({ group: null, joins: user(8, "cid", "c~1") })); // server-wide
  FakeSocket.last.message(diff({ group: "other", joins: user(8, "cid", "c~2") }));
  FakeSocket.last.reply({ "presence.list": { ...state(user(7, "ann", "a~1")), group: "lobby" } });
  await until(() => presence.synced);
  assert.deepEqual(presence.list().map((u) => u.username), ["ann", "bob"]);
});

test("resynced on reconnect: who left meanwhile leaves, who stayed does not join again", async () => {
  const { c, presence, events } = await synced(state({ ...user(7, "ann", "a~1"), ...user(9, "bob", "b~1") }));
  events.length = 0;
  const synced_ = [];
  presence.onSync(() => synced_.push(presence.count().users));
  FakeSocket.last.serverClose(1006);
  assert.equal(presence.synced, false);
  assert.deepEqual(presence.list().length, 2); // the last view stays (a page greys it)
  await until(() => FakeSocket.instances.length === 2);
  FakeSocket.last.open();
  await until(() => FakeSocket.last.sent.length === 1);
  FakeSocket.last.reply({ "presence.list": state(user(7, "ann", "a~1")) });
  await until(() => presence.synced);
  assert.deepEqual(events, [["leave", "9", null, ["b~1"]]]);
  assert.deepEqual(synced_, [1]);
  presence.stop();
  FakeSocket.last.message(diff({ joins: user(8, "cid", "c~1") }));
  assert.equal(presence.count().users, 1);
  c.close();
});

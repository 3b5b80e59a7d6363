// The demo page: chat rooms, who is online and a shared counter, over one wscommands client.
import { WSCommands } from "wscommands";

const $ = (id) => document.getElementById(id);
const me = JSON.parse($("ws-user").textContent); // {id, username} or null (anonymous)
// resume: a reconnect recovers the pushes missed meanwhile (chat messages, the counter)
// instead of reloading the room; the idempotent reads are retried if a drop loses the reply.
const client = new WSCommands({
  user: me,
  resume: true,
  idempotent: ["counter.get", "presence.list", "whoami"],
});
let room = new URLSearchParams(location.search).get("room") || "lobby";
const online = new Map(); // connection_id -> {user_id, username}, every process
const members = new Map(); // the same, for the current room
const closes = []; // every close: {code, reason, reconnecting, delay, at}
const resyncs = []; // every resync: {stream, reason}
const resumes = []; // every resume's verdicts: {stream: {recovered, reason?, ...}}
window.demo = { client, online, closes, resyncs, resumes }; // for the console and the tests

// Connection status -------------------------------------------------------------------------

let countdown = null; // the interval that updates "reconnecting in N s"

function showStatus(state, text) {
  clearInterval(countdown);
  $("status").dataset.state = state;
  $("status").textContent = text;
  // "retry now" while waiting for a retry or for the network; presence greyed while away.
  $("retry-now").hidden = !(state === "waiting" || state === "offline");
  document.body.classList.toggle("disconnected", state !== "ready");
}

client.onconnecting(({ attempt }) => {
  showStatus("connecting", attempt ? `connecting (attempt ${attempt + 1})…` : "connecting…");
});

client.onreconnecting(({ delay }) => {
  const due = Date.now() + delay;
  const tick = () => {
    const left = Math.max(0, due - Date.now());
    $("status").textContent = `reconnecting in ${Math.ceil(left / 1000)} s`;
  };
  showStatus("waiting", "");
  tick();
  countdown = setInterval(tick, 250);
});

client.onclose((info) => {
  closes.push({ ...info, at: new Date().toISOString() });
  if (!info.reconnecting) showStatus("closed", "disconnected");
  else if (info.delay === null) showStatus("offline", "offline: waiting for the network");
  // else onreconnecting shows the countdown
});

window.addEventListener("offline", () => {
  if (client.state === "offline") showStatus("offline", "offline: waiting for the network");
});

$("retry-now").addEventListener("click", () => client.connect().catch(() => {}));

client.onerror((error) => showError(error));

function showError(error) {
  const toast = $("error");
  toast.textContent = `${error.code}: ${error.message}`;
  toast.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => (toast.hidden = true), 5000);
}

// On each (re)connect: the room is reloaded unless the resume recovered its missed messages
// (then the server has re-joined it too); the counter and who is online are read again.
let recovered = {}; // the last resume's verdict per stream
client.onresumed((verdicts) => {
  recovered = verdicts;
  resumes.push(verdicts);
});
client.onclose(() => (recovered = {}));
client.onresync((event) => {
  resyncs.push(event);
  // History lost while connected (a gap that could not be filled): reload the room.
  if (event.stream === `group:${room}` && client.is_connected()) enterRoom(room).catch(showError);
});

client.onready(async () => {
  showStatus("ready", "connected");
  try {
    if (recovered[`group:${room}`]?.recovered) {
      fill(members, await client.call("presence.list", { group: room }));
      renderMembers();
    } else {
      await enterRoom(room);
    }
    const reply = await client.request({ "counter.get": null, "presence.list": null });
    showCounter(reply["counter.get"] ?? 0);
    fill(online, reply["presence.list"] ?? []);
    renderOnline();
  } catch (error) {
    showError(error);
  }
});

// Chat -----------------------------------------------------------------------------------------

async function enterRoom(name) {
  if (client.is_connected() && name !== room) {
    client.call("chat.leave", { room }).catch(showError);
  }
  room = name;
  for (const button of document.querySelectorAll("#rooms button")) {
    button.classList.toggle("active", button.dataset.room === room);
  }
  const { history } = await client.call("chat.join", { room });
  $("messages").replaceChildren();
  for (const message of history) addMessage(message);
  fill(members, await client.call("presence.list", { group: room }));
  renderMembers();
}

function addMessage({ from, text }, kind = "message") {
  const item = document.createElement("li");
  item.className = kind;
  if (kind === "message") {
    const who = document.createElement("strong");
    who.textContent = from;
    if (me && from === me.username) item.classList.add("mine");
    item.append(who, " ", text);
  } else {
    item.textContent = text;
  }
  $("messages").append(item);
  $("messages").scrollTop = $("messages").scrollHeight;
}

client.on("chat_message", (message) => {
  if (message.room === room) addMessage(message);
});

$("rooms").addEventListener("click", (event) => {
  const name = event.target.dataset?.room;
  if (name && name !== room) enterRoom(name).catch(showError);
});

$("room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("room-input").value.trim();
  $("room-input").value = "";
  if (name && name !== room) enterRoom(name).catch(showError);
});

// A message is shown as pending until the server took it (its chat_message push shows it
// for real); typed while disconnected, it waits in the client's queue and goes out once the
// room is joined again.
$("compose")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  input.value = "";
  const pending = document.createElement("li");
  pending.className = "message mine pending";
  pending.textContent = text;
  pending.title = "sending…";
  $("pending").append(pending);
  try {
    await client.call("chat.say", { room, text });
    pending.remove();
  } catch (error) {
    pending.classList.replace("pending", "failed");
    pending.title = `not sent: ${error.message}`;
    pending.addEventListener("click", () => pending.remove(), { once: true });
    showError(error);
  }
});

// Who is online --------------------------------------------------------------------------------

function fill(map, entries) {
  map.clear();
  for (const e of entries) map.set(e.connection_id, { user_id: e.user_id, username: e.username });
}

/** Connections grouped by user: [[username, connections], ...] and the anonymous count. */
function byUser(map) {
  const users = new Map();
  let guests = 0;
  for (const { username } of map.values()) {
    if (username === null) guests += 1;
    else users.set(username, (users.get(username) ?? 0) + 1);
  }
  return { users: [...users].sort(([a], [b]) => a.localeCompare(b)), guests };
}

function renderOnline() {
  const { users, guests } = byUser(online);
  $("online").replaceChildren(
    ...users.map(([name, count]) => {
      const item = document.createElement("li");
      item.textContent = name;
      if (me && name === me.username) item.classList.add("me");
      if (count > 1) item.title = `${count} tabs`;
      return item;
    }),
  );
  $("online-count").textContent = String(users.length + guests);
  $("guests").textContent = guests ? `and ${guests} guest${guests > 1 ? "s" : ""}` : "";
}

function renderMembers() {
  const { users, guests } = byUser(members);
  const names = users.map(([name]) => name);
  if (guests) names.push(`${guests} guest${guests > 1 ? "s" : ""}`);
  $("room-members").textContent = `#${room}: ${names.join(", ") || "nobody"} here`;
}

client.on("presence", (event) => {
  const map = event.group === null ? online : event.group === room ? members : null;
  if (!map) return;
  const who = event.username ?? "a guest";
  if (event.event === "join") {
    map.set(event.connection_id, { user_id: event.user_id, username: event.username });
  } else {
    map.delete(event.connection_id);
  }
  if (map === online) {
    renderOnline();
  } else {
    renderMembers();
    if (event.username !== me?.username) addMessage({ text: `${who} ${event.event === "join" ? "joined" : "left"}` }, "system");
  }
});

// Shared counter -------------------------------------------------------------------------------

function showCounter(value) {
  $("counter-value").textContent = String(value);
}

client.on("counter", ({ value }) => showCounter(value));

$("counter-inc").addEventListener("click", () => {
  client.call("counter.increment", { amount: 1 }).then(showCounter, showError);
});

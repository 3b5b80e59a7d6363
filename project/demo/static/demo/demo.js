// The demo page: chat rooms, who is online and a shared counter, over one wscommands client.
import { Presence, WSCommands } from "wscommands";

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
// Who is online, every process: a Presence syncs itself on every (re)connect through
// presence.list (which also subscribes this connection to the server-wide diffs).
const online = new Presence(client);
let members = null; // the Presence of the current room
const closes = []; // every close: {code, reason, reconnecting, delay, at}
const resyncs = []; // every resync: {stream, reason}
window.demo = { client, online, closes, resyncs }; // for the console (and the browser tests)

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
client.onresumed((verdicts) => (recovered = verdicts));
client.onclose(() => (recovered = {}));
client.onresync((event) => {
  resyncs.push(event);
  // History lost while connected (a gap that could not be filled): reload the room.
  if (event.stream === `group:${room}` && client.is_connected()) enterRoom(room).catch(showError);
});

client.onready(async () => {
  showStatus("ready", "connected");
  try {
    if (recovered[`group:${room}`]?.recovered && members?.group === room) {
      await members.sync(); // the server re-joined the room: only who is here is re-read
    } else {
      await enterRoom(room);
    }
    showCounter((await client.call("counter.get")) ?? 0);
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
  if (members?.group === room) {
    await members.sync(); // back after a reconnect: who left meanwhile leaves, nobody rejoins
  } else {
    members?.stop();
    members = new Presence(client, { group: room, auto: false });
    await members.sync(); // who is already here is not announced
    members.onJoin((key, current, user) => {
      if (!current) announce(user, "joined");
    });
    members.onLeave((key, current, user) => {
      if (!current) announce(user, "left");
    });
    members.onSync(renderMembers);
  }
  renderMembers();
}

/** "ann joined" / "ann left" in the room, once per user (not per tab or process). */
function announce(user, what) {
  if (user.username !== me?.username) addMessage({ text: `${user.username} ${what}` }, "system");
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

function guestsText(n) {
  return n ? `and ${n} guest${n > 1 ? "s" : ""}` : "";
}

function renderOnline() {
  const users = online.list();
  $("online").replaceChildren(
    ...users.map(({ username, connections }) => {
      const item = document.createElement("li");
      item.textContent = username;
      if (me && username === me.username) item.classList.add("me");
      if (connections.length > 1) item.title = `${connections.length} tabs`;
      return item;
    }),
  );
  $("online-count").textContent = String(users.length + online.guests());
  $("guests").textContent = guestsText(online.guests());
}

function renderMembers() {
  if (!members) return;
  const names = members.list().map(({ username }) => username);
  const guests = members.guests();
  if (guests) names.push(`${guests} guest${guests > 1 ? "s" : ""}`);
  $("room-members").textContent = `#${room}: ${names.join(", ") || "nobody"} here`;
}

online.onSync(renderOnline);

// Shared counter -------------------------------------------------------------------------------

function showCounter(value) {
  $("counter-value").textContent = String(value);
}

client.on("counter", ({ value }) => showCounter(value));

$("counter-inc").addEventListener("click", () => {
  client.call("counter.increment", { amount: 1 }).then(showCounter, showError);
});

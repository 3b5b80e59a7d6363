// The demo page: chat rooms, who is online and a shared counter, over one wscommands client.
import { Presence, WSCommands } from "wscommands";

const $ = (id) => document.getElementById(id);
const me = JSON.parse($("ws-user").textContent); // {id, username} or null (anonymous)
const client = new WSCommands({ user: me });
let room = new URLSearchParams(location.search).get("room") || "lobby";
// Who is online, every process: a Presence syncs itself on every (re)connect through
// presence.list (which also subscribes this connection to the server-wide diffs).
const online = new Presence(client);
let members = null; // the Presence of the current room
const closes = []; // every close: {code, reason, reconnecting, delay, at}
window.demo = { client, online, closes }; // for the console (and the browser tests)

// Connection status -------------------------------------------------------------------------

function showStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

client.onclose((info) => {
  const { reconnecting, delay } = info;
  closes.push({ ...info, at: new Date().toISOString() });
  showStatus(reconnecting ? "waiting" : "closed", reconnecting ? `reconnecting in ${(delay / 1000).toFixed(1)} s…` : "offline");
});

client.onerror((error) => showError(error));

function showError(error) {
  const toast = $("error");
  toast.textContent = `${error.code}: ${error.message}`;
  toast.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => (toast.hidden = true), 5000);
}

// Everything is (re)loaded on each (re)connect: the server forgot this connection's rooms.
client.onready(async () => {
  showStatus("ready", "connected");
  try {
    await enterRoom(room);
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

$("compose")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  try {
    await client.call("chat.say", { room, text });
    input.value = "";
  } catch (error) {
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

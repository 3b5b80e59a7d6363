// The demo page: chat rooms, who is online and a shared counter, over one wscommands client.
// @ts-check
// tsc --strict checks this script against api.d.ts, generated from the server's commands by
// `manage.py wscommands_schema` (project/demo/tsconfig.json; tests/test_example_types.py).
import { Presence, WSCommands } from "wscommands";

/** @typedef {import("./api").Commands} Commands */
/** @typedef {import("./api").Pushes} Pushes */

/** @param {string} id */
const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
};
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id));
/** @type {import("wscommands").User | null} {id, username} or null (anonymous) */
const me = JSON.parse($("ws-user").textContent ?? "null");
// resume: a reconnect recovers the pushes missed meanwhile (chat messages, the counter)
// instead of reloading the room; the idempotent reads are retried if a drop loses the reply.
/** @type {WSCommands<Commands, Pushes>} */
const client = new WSCommands({
  user: me,
  resume: true,
  idempotent: ["counter.get", "presence.list", "whoami"],
});
let room = new URLSearchParams(location.search).get("room") || "lobby";
// Who is online, every process: a Presence syncs itself on every (re)connect through
// presence.list (which also subscribes this connection to the server-wide diffs).
const online = new Presence(client);
/** @type {Presence | null} the Presence of the current room */
let members = null;
/** @type {(import("wscommands").CloseInfo & { at: string })[]} every close */
const closes = [];
/** @type {import("wscommands").ResyncInfo[]} every resync */
const resyncs = [];
/** @type {Record<string, import("wscommands").ResumeVerdict>[]} every resume's verdicts */
const resumes = [];
// For the console (and the browser tests).
/** @type {any} */ (window).demo = { client, online, closes, resyncs, resumes };

// Connection status -------------------------------------------------------------------------

/** @type {ReturnType<typeof setInterval> | undefined} the interval that updates "reconnecting in N s" */
let countdown;

/** @param {string} state @param {string} text */
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
  if (me && SESSION_ENDED.has(info.code)) showSignedOut();
  else if (signedOut) return;
  else if (!info.reconnecting) showStatus("closed", "disconnected");
  else if (info.delay === null) showStatus("offline", "offline: waiting for the network");
  // else onreconnecting shows the countdown
});

// Signed out --------------------------------------------------------------------------------

// The server ends a signed-out session's sockets with 4401 (session_ended); servers from
// before that code used 3000 (authentication failed), which, on a signed-in page, means the
// same: the session no longer holds the user.
const SESSION_ENDED = new Set([4401, 3000]);
let signedOut = false;

/** Say so in words, offer to sign in again, and send nothing more as the old user. */
function showSignedOut() {
  if (signedOut) return;
  signedOut = true;
  client.close(); // no reconnect as that user (the close already stopped it; this makes sure)
  showStatus("signed-out", "signed out");
  $("signed-out").hidden = false;
  const guest = document.getElementById("guest-account");
  if (guest instanceof HTMLTemplateElement) {
    document.querySelector(".account")?.replaceChildren(guest.content.cloneNode(true));
  }
  // Its buttons would only fail now: the client is closed.
  for (const control of document.querySelectorAll("#rooms button, #room-input, #counter-inc")) {
    if (control instanceof HTMLButtonElement || control instanceof HTMLInputElement) {
      control.disabled = true;
    }
  }
  const compose = document.getElementById("compose");
  if (compose) {
    const invite = document.createElement("p");
    invite.className = "compose muted";
    invite.textContent = "Signed out: sign in again to chat.";
    compose.replaceWith(invite);
  }
}

window.addEventListener("offline", () => {
  if (client.state === "offline") showStatus("offline", "offline: waiting for the network");
});

$("retry-now").addEventListener("click", () => client.connect().catch(() => {}));

client.onerror((error) => {
  // The sign-out notice says it in words; its close code is not an error to show.
  const code = /** @type {{ code?: string }} */ (error).code;
  if (me && (code === "session_ended" || code === "authentication_failed")) return;
  if (!signedOut) showError(error);
});

/** @type {ReturnType<typeof setTimeout> | undefined} */
let errorTimer;

/** @param {unknown} error a WSCommandsError, or any Error */
function showError(error) {
  const { code, message } = /** @type {{ code?: string, message: string }} */ (error);
  const toast = $("error");
  toast.textContent = `${code}: ${message}`;
  toast.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (toast.hidden = true), 5000);
}

// On each (re)connect: the room is reloaded unless the resume recovered its missed messages
// (then the server has re-joined it too); the counter and who is online are read again.
/** @type {Record<string, { recovered: boolean } | undefined>} the last resume's verdict per stream */
let recovered = {};
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

/** @param {string} name */
async function enterRoom(name) {
  if (client.is_connected() && name !== room) {
    client.call("chat.leave", { room }).catch(showError);
  }
  room = name;
  for (const button of document.querySelectorAll("#rooms button")) {
    if (!(button instanceof HTMLElement)) continue;
    button.classList.toggle("active", button.dataset.room === room);
  }
  const { history } = await client.call("chat.join", { room });
  $("messages").replaceChildren();
  for (const message of history) addMessage(message);
  if (members?.group === room) {
    await members.sync(); // back after a reconnect: who left meanwhile leaves, nobody rejoins
  } else {
    members?.stop();
    const here = new Presence(client, { group: room, auto: false });
    members = here;
    await here.sync(); // who is already here is not announced
    here.onJoin((key, current, user) => {
      if (!current) announce(user, "joined");
    });
    here.onLeave((key, current, user) => {
      if (!current) announce(user, "left");
    });
    here.onSync(renderMembers);
  }
  renderMembers();
}

/**
 * "ann joined" / "ann left" in the room, once per user (not per tab or process).
 * @param {import("wscommands").PresenceUser} user @param {string} what
 */
function announce(user, what) {
  if (user.username !== me?.username) addMessage({ text: `${user.username} ${what}` }, "system");
}

/** @param {{ from?: string, text: string }} message @param {"message" | "system"} kind */
function addMessage({ from, text }, kind = "message") {
  const item = document.createElement("li");
  item.className = kind;
  if (kind === "message") {
    const who = document.createElement("strong");
    who.textContent = from ?? "";
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
  const name = event.target instanceof HTMLElement ? event.target.dataset.room : undefined;
  if (name && name !== room) enterRoom(name).catch(showError);
});

$("room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = input("room-input").value.trim();
  input("room-input").value = "";
  if (name && name !== room) enterRoom(name).catch(showError);
});

// A message is shown as pending until the server took it (its chat_message push shows it
// for real); typed while disconnected, it waits in the client's queue and goes out once the
// room is joined again.
document.getElementById("compose")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = input("message-input");
  const text = field.value;
  field.value = "";
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
    pending.title = `not sent: ${/** @type {Error} */ (error).message}`;
    pending.addEventListener("click", () => pending.remove(), { once: true });
    showError(error);
  }
});

// Who is online --------------------------------------------------------------------------------

/** @param {number} n */
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
  const names = members.list().map(({ username }) => String(username));
  const guests = members.guests();
  if (guests) names.push(`${guests} guest${guests > 1 ? "s" : ""}`);
  $("room-members").textContent = `#${room}: ${names.join(", ") || "nobody"} here`;
}

online.onSync(renderOnline);

// Shared counter -------------------------------------------------------------------------------

/** @param {number} value */
function showCounter(value) {
  $("counter-value").textContent = String(value);
}

client.on("counter", ({ value }) => showCounter(value));

$("counter-inc").addEventListener("click", () => {
  client.call("counter.increment", { amount: 1 }).then(showCounter, showError);
});

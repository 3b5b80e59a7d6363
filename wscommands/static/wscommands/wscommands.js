// wscommands browser client: JSON commands over one WebSocket, with request/reply promises,
// pushes as events, reconnection with backoff, a heartbeat, the seed's authenticate flow,
// resumable streams (opt-in) and idempotent calls retried across a reconnect.
// Dependency-free ES module; wscommands.classic.js is the same code as a classic script,
// generated from this file by tests/js/build_classic.mjs (never edit it by hand). The block of
// wire constants is written from the server's wscommands/wire/codes.py by
// `python -m wscommands.wire.jsconstants` (run it first when a constant changes).
// Documentation: docs/client.md. Wire protocol: docs/protocol.md.

/** Default options; see docs/client.md for what each one does. */
export const DEFAULTS = Object.freeze({
  authenticate: "cookie", // "cookie" | "session_id" | () => session key (string or Promise)
  sessionIdUrl: "/session_id",
  user: null, // {id, username} the page knows it is signed in as (cookie mode)
  timeout: 30000, // ms a call waits for its reply (queued time included); 0: no limit
  queue: 100, // messages kept while disconnected, sent on reconnect; 0: fail at once
  connectTimeout: 10000, // ms for the WebSocket handshake (and authenticate) to finish
  reconnect: { initialDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5, maxAttempts: Infinity },
  heartbeat: { interval: 25000, timeout: 10000 },
  autoConnect: true,
  resume: false, // connect with ?resume=1: recover missed pushes after a reconnect
  idempotent: [], // names of commands safe to send twice: retried after a drop
  protocols: undefined,
  WebSocket: undefined, // constructor to use instead of globalThis.WebSocket (e.g. node's "ws")
});

// BEGIN GENERATED wire constants: `python -m wscommands.wire.jsconstants` writes this
// from wscommands/wire/codes.py: do not edit by hand.

/** Close codes (docs/protocol.md): the server's, then those of the WebSocket layer. */
export const CLOSE = Object.freeze({
  NORMAL: 1000, // normal closure
  AUTHENTICATION_FAILED: 3000, // authentication failed
  FORBIDDEN: 3003, // forbidden
  BAD_REQUEST: 4400, // bad request: the client keeps sending what the server refuses
  SESSION_ENDED: 4401, // session ended (logged out, deleted or expired): sign in again
  TOO_BIG: 4413, // message too big
  TOO_MANY_REQUESTS: 4429, // too many requests
  SERVER_ERROR: 4500, // unexpected server error
  SHUTTING_DOWN: 4503, // server shutting down or restarting: reconnect
  GOING_AWAY: 1001, // going away
  NO_STATUS: 1005, // no status code
  ABNORMAL: 1006, // abnormal closure: no close frame
  POLICY_VIOLATION: 1008, // policy violation
  MESSAGE_TOO_BIG: 1009, // message too big for the WebSocket server
  INTERNAL_ERROR: 1011, // internal error of the WebSocket server
  SERVICE_RESTART: 1012, // service restart
  RESTARTING: 4503, // = SHUTTING_DOWN (the client's older name)
});

/** The codes of the protocol's `errors` entries. */
export const ERROR_CODES = Object.freeze({
  CLIENT_ERROR: "client_error",
  UNKNOWN_COMMAND: "unknown_command",
  INVALID_ARGUMENTS: "invalid_arguments",
  NOT_AUTHENTICATED: "not_authenticated",
  PERMISSION_DENIED: "permission_denied",
  RATE_LIMITED: "rate_limited",
  UNAVAILABLE: "unavailable",
  COMMAND_FAILED: "command_failed",
  INVALID_JSON: "invalid_json",
  INVALID_REQUEST: "invalid_request",
});

/** Reserved keys of resumable delivery's frames: bookkeeping, never events. */
export const POSITION = "wscommands.position";
export const STREAMS = "wscommands.streams";
export const RESUME = "wscommands.resume";

/** Most streams one `wscommands.resume` request may name (the server's bound). */
export const RESUME_MAX_STREAMS = 100;

/** Why the server did not recover a stream (a resume reply's `reason`). */
export const RESUME_REASONS = Object.freeze({
  HISTORY_LOST: "history_lost",
  TOO_FAR_BEHIND: "too_far_behind",
  FORBIDDEN: "forbidden",
  INVALID: "invalid",
});
// END GENERATED wire constants

/** Least delay (ms) before reconnecting after the server closed with 4429 (too many requests). */
export const RATE_LIMITED_DELAY = 5000;

/** An error from the server or the client: `code`, `message`, `details` as in the protocol. */
export class WSCommandsError extends Error {
  constructor(code, message, details = undefined, command = undefined) {
    super(message);
    this.name = "WSCommandsError";
    this.code = code;
    this.details = details;
    this.command = command;
  }

  /** Build one from a protocol `errors` entry ({code, message, details}). */
  static fromEntry(entry, command) {
    const e = entry && typeof entry === "object" ? entry : {};
    return new WSCommandsError(
      typeof e.code === "string" ? e.code : "unknown_error",
      typeof e.message === "string" ? e.message : String(e.message ?? "error"),
      e.details,
      command,
    );
  }
}

/**
 * The delay (ms) before reconnect attempt number `attempt` (0 for the first retry):
 * `min(maxDelay, initialDelay * factor ** attempt)`, of which a random share of up to
 * `jitter` (0..1) is taken off so that clients dropped together do not return together.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const o = { ...DEFAULTS.reconnect, ...options };
  const base = Math.min(o.maxDelay, o.initialDelay * o.factor ** Math.max(0, attempt));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.round(base * (1 - jitter * random()));
}

/** Listeners by event name, with `once` and `off`; a throwing listener does not stop others. */
export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(event, listener, once = false) {
    if (typeof listener !== "function") throw new TypeError("listener must be a function");
    const list = this._listeners.get(event) ?? [];
    list.push({ listener, once: Boolean(once) });
    this._listeners.set(event, list);
  }

  /** Remove `listener` from `event`; without a listener, every listener of `event`. */
  off(event, listener) {
    if (listener === undefined) {
      this._listeners.delete(event);
      return;
    }
    const list = (this._listeners.get(event) ?? []).filter((l) => l.listener !== listener);
    if (list.length) this._listeners.set(event, list);
    else this._listeners.delete(event);
  }

  /** Call the listeners of `event` with `args`; returns how many were called. */
  emit(event, ...args) {
    return this.emitAll(event, ...args).length;
  }

  /** Call the listeners of `event` with `args`; returns what each returned (or undefined). */
  emitAll(event, ...args) {
    const list = this._listeners.get(event);
    if (!list) return [];
    const remaining = list.filter((l) => !l.once);
    if (remaining.length !== list.length) {
      if (remaining.length) this._listeners.set(event, remaining);
      else this._listeners.delete(event);
    }
    return list.map(({ listener }) => callSafely(listener, ...args));
  }

  count(event) {
    return this._listeners.get(event)?.length ?? 0;
  }
}

function reportError(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}

/**
 * Requests waiting for their reply, by request_id. `settle(reply)` resolves or rejects the
 * matching one; pure bookkeeping, so it can be tested without a socket.
 */
export class PendingRequests {
  constructor() {
    this._byId = new Map();
  }

  get size() {
    return this._byId.size;
  }

  has(id) {
    return this._byId.has(id);
  }

  /** Register request `id`; returns its promise. `timeout` ms (0: none) rejects with "timeout". */
  add(id, timeout = 0, meta = {}) {
    let entry;
    const promise = new Promise((resolve, reject) => {
      entry = { resolve, reject, timer: null, ...meta };
    });
    if (timeout > 0 && Number.isFinite(timeout)) {
      entry.timer = setTimeout(() => {
        this.reject(id, new WSCommandsError("timeout", `no reply within ${timeout} ms`));
      }, timeout);
    }
    this._byId.set(id, entry);
    return promise;
  }

  get(id) {
    return this._byId.get(id);
  }

  /**
   * Settle the request a reply belongs to: a reply whose `errors.request` is set (the server
   * refused the whole request) rejects, any other resolves with the reply object.
   * Returns false if no request waits for this reply's request_id.
   */
  settle(reply) {
    const entry = this._take(reply?.request_id);
    if (!entry) return false;
    const refused = reply.errors?.request;
    if (refused) entry.reject(WSCommandsError.fromEntry(refused));
    else entry.resolve(reply);
    return true;
  }

  reject(id, error) {
    const entry = this._take(id);
    if (entry) entry.reject(error);
    return Boolean(entry);
  }

  /** Reject every request for which `predicate(entry)` holds. */
  rejectWhere(predicate, makeError) {
    for (const id of this.idsWhere(predicate)) this.reject(id, makeError());
  }

  /** The ids of the requests for which `predicate(entry)` holds, oldest first. */
  idsWhere(predicate) {
    return [...this._byId].filter(([, entry]) => predicate(entry)).map(([id]) => id);
  }

  _take(id) {
    const entry = this._byId.get(id);
    if (entry === undefined) return undefined;
    this._byId.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }
}

/** The result of command `name` in a reply; throws its protocol error if it failed. */
export function resultOf(reply, name) {
  const entry = reply.errors?.[name];
  if (entry) throw WSCommandsError.fromEntry(entry, name);
  return reply[name];
}

// Resumable streams (docs/client.md, "Resuming") ------------------------------------------

/** Why a stream was not recovered and must be resynced (the server's reasons but `forbidden`,
 * plus the client's `resume_failed`). */
export const RESYNC_REASONS = Object.freeze([
  RESUME_REASONS.HISTORY_LOST,
  RESUME_REASONS.TOO_FAR_BEHIND,
  RESUME_REASONS.INVALID,
  "resume_failed",
]);

function isPosition(p) {
  return (
    p !== null &&
    typeof p === "object" &&
    typeof p.epoch === "string" &&
    Number.isSafeInteger(p.offset) &&
    p.offset >= 0
  );
}

/**
 * What a resumable connection knows of its streams: per stream, the epoch and the highest
 * offset seen, and the ranges of offsets below it still missing (a gap, being filled).
 * Pure bookkeeping, so it can be tested without a socket.
 */
export class StreamPositions {
  constructor() {
    this._streams = new Map(); // stream -> {epoch, offset, missing: [[from, to], ...]}
  }

  get size() {
    return this._streams.size;
  }

  has(stream) {
    return this._streams.has(stream);
  }

  /** The positions to resume from: per stream, the last offset before anything missing. */
  snapshot() {
    const out = {};
    for (const [stream, s] of this._streams) {
      out[stream] = { epoch: s.epoch, offset: s.missing.length ? s.missing[0][0] - 1 : s.offset };
    }
    return out;
  }

  /** Take a position the server announced (`wscommands.streams`); null forgets the stream. */
  set(stream, position) {
    if (isPosition(position)) {
      this._streams.set(stream, { epoch: position.epoch, offset: position.offset, missing: [] });
    } else {
      this._streams.delete(stream);
    }
  }

  /** Whether offsets of `stream` are missing (a gap not filled yet). */
  hasGap(stream) {
    return Boolean(this._streams.get(stream)?.missing.length);
  }

  /** The streams with offsets missing. */
  gaps() {
    return [...this._streams].filter(([, s]) => s.missing.length).map(([stream]) => stream);
  }

  /**
   * A push carrying `position` ({stream, epoch, offset}) arrived. Returns what it is:
   * "new" (emit it), "duplicate" (seen already: drop it), "gap" (emit it; offsets before it
   * are missing), "epoch" (emit it; the stream's history was lost, the app must resync),
   * or "untracked" (no valid position: emit it as is).
   */
  accept(position) {
    if (!isPosition(position) || typeof position.stream !== "string") return "untracked";
    const { stream, epoch, offset } = position;
    const s = this._streams.get(stream);
    if (!s) {
      this._streams.set(stream, { epoch, offset, missing: [] });
      return "new";
    }
    if (s.epoch !== epoch) {
      this._streams.set(stream, { epoch, offset, missing: [] });
      return "epoch";
    }
    if (offset === s.offset + 1) {
      s.offset = offset;
      return "new";
    }
    if (offset > s.offset) {
      s.missing.push([s.offset + 1, offset - 1]);
      s.offset = offset;
      return "gap";
    }
    return takeFrom(s.missing, offset) ? "new" : "duplicate";
  }

  /**
   * Apply the server's verdict on `stream` (an entry of a `wscommands.resume` reply):
   * returns the reason to resync, or null when nothing was lost.
   */
  settle(stream, entry) {
    const s = this._streams.get(stream);
    if (entry === null || typeof entry !== "object") return null;
    if (entry.recovered === true && s && isPosition(entry) && entry.epoch === s.epoch) {
      // The replay came before this reply: anything still missing up to here was not replayed.
      const lost = s.missing.some(([from]) => from <= entry.offset);
      s.missing = s.missing.filter(([from]) => from > entry.offset);
      s.offset = Math.max(s.offset, entry.offset);
      return lost ? "resume_failed" : null;
    }
    if (entry.recovered !== true && entry.reason === RESUME_REASONS.FORBIDDEN) {
      this._streams.delete(stream);
      return null;
    }
    this.set(stream, entry);
    if (entry.recovered === true) return s ? "resume_failed" : null;
    return RESYNC_REASONS.includes(entry.reason) ? entry.reason : "resume_failed";
  }

  /** A stream whose resume failed as a whole: forget its gaps (the app resyncs instead). */
  giveUp(stream) {
    const s = this._streams.get(stream);
    if (s) s.missing = [];
  }
}

/** Remove `offset` from the ranges `missing`; returns whether it was in one. */
function takeFrom(missing, offset) {
  const i = missing.findIndex(([from, to]) => from <= offset && offset <= to);
  if (i < 0) return false;
  const [from, to] = missing[i];
  const rest = [];
  if (from < offset) rest.push([from, offset - 1]);
  if (offset < to) rest.push([offset + 1, to]);
  missing.splice(i, 1, ...rest);
  return true;
}

/**
 * What to do after the server closed the connection with `code`, at reconnect attempt
 * `attempt`: `{reconnect, delay, error}` (`error`: the code of the error to report).
 */
export function closePolicy(code, attempt, reconnect, random = Math.random) {
  const backoff = () => backoffDelay(attempt, reconnect, random);
  switch (code) {
    case CLOSE.AUTHENTICATION_FAILED: // reconnecting would fail again: needs a new sign-in
      return { reconnect: false, error: "authentication_failed" };
    case CLOSE.FORBIDDEN:
      return { reconnect: false, error: "forbidden" };
    case CLOSE.SESSION_ENDED: // signed out (here or elsewhere): nothing more as that user
      return { reconnect: false, error: "session_ended" };
    case CLOSE.SHUTTING_DOWN: {
      // A restart on purpose: come back soon, anywhere within the delay ("full jitter"), so
      // that the clients of a restarted process do not all return at the same moment.
      const full = backoffDelay(attempt, { ...reconnect, jitter: 0 }, random);
      return { reconnect: true, delay: Math.round(full * random()) };
    }
    case CLOSE.TOO_MANY_REQUESTS:
      return {
        reconnect: true,
        delay: Math.max(RATE_LIMITED_DELAY, backoff()),
        error: ERROR_CODES.RATE_LIMITED,
      };
    case CLOSE.BAD_REQUEST:
      return { reconnect: true, delay: backoff(), error: "bad_request" };
    case CLOSE.TOO_BIG:
    case CLOSE.MESSAGE_TOO_BIG: // daphne's own frame cap (1 MiB by default)
      return { reconnect: true, delay: backoff(), error: "message_too_big" };
    default:
      return { reconnect: true, delay: backoff() };
  }
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc) throw new TypeError("no page location: pass the WebSocket URL (ws://host/ws/)");
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws/`;
}

/** `options` over DEFAULTS; `reconnect`/`heartbeat` may be true, false or partial objects. */
export function withDefaults(options = {}) {
  const o = { ...DEFAULTS, ...options };
  for (const key of ["reconnect", "heartbeat"]) {
    const value = o[key];
    o[key] = value === false ? false : { ...DEFAULTS[key], ...(value === true ? {} : value) };
  }
  return o;
}

/** A positive number of ms, or Infinity for 0/undefined (which mean "no limit"). */
function limit(ms) {
  return ms > 0 ? ms : Infinity;
}

/** True when the browser says it has no network (navigator.onLine); unknown counts as online. */
function isOffline() {
  return globalThis.navigator?.onLine === false;
}

/**
 * A random key for an idempotent request: 128 bits as 32 hex digits (getRandomValues works
 * on plain-http pages too, where crypto.randomUUID does not exist).
 */
export function idempotencyKey() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `url` with the query parameter that opts a connection in to resumable delivery. */
export function resumeUrl(url) {
  const u = new URL(url, globalThis.location?.href);
  u.searchParams.set("resume", "1");
  return u.toString();
}

/**
 * `url` with `client=<id>`: the token that makes this client, on every socket it opens, the
 * owner of its idempotent requests' records when it is anonymous (docs/protocol.md).
 */
function clientUrl(url, clientId) {
  const u = new URL(url, globalThis.location?.href);
  u.searchParams.set("client", clientId);
  return u.toString();
}

/**
 * A wscommands connection: `new WSCommands(url?, options?)`, the URL defaulting to
 * ws(s)://<page host>/ws/. `state` is "idle", "connecting", "authenticating", "resuming",
 * "preparing" (onready handlers running), "ready", "waiting" (to reconnect), "offline"
 * (waiting for the network) or "closed" (by close(), or for good after 3000/3003).
 */
export class WSCommands {
  constructor(url = undefined, options = {}) {
    if (url !== null && typeof url === "object") [url, options] = [undefined, url];
    this.url = url ?? defaultUrl();
    this.options = withDefaults(options);
    this.user = this.options.user ?? null;
    // Sent on every socket (?client=): a retry after a reconnect finds its first run's record.
    this.clientId = idempotencyKey();
    this.state = "idle";
    this.attempt = 0; // reconnect attempts since the client was last ready
    this._events = new Emitter(); // pushes, by event name
    this._life = new Emitter(); // the client's own: ready, close, error, connecting, resync, ...
    this._pending = new PendingRequests();
    this._queue = []; // {frame, id} waiting for the connection to be ready
    this._retry = []; // {frame, id} of idempotent requests whose reply was lost in a drop
    this._idempotent = new Set(this.options.idempotent ?? []);
    this._positions = new StreamPositions();
    this._resumeFrom = null; // {stream: position} this socket resumes, each until its reply
    this._resuming = new Map(); // request_id -> streams of a resume request after a reconnect
    this._verdicts = {}; // the resume's verdicts so far
    this._fills = new Map(); // request_id -> streams of a gap fill in flight
    this._held = []; // pushes of streams being resumed, let out after the resume's reply
    this._nextId = 1;
    this._hbId = 0;
    this._ws = null;
    this._timers = {};
    this._readyWaiters = [];
    this._authenticated = false;
    this._authFailure = undefined;
    this._authId = undefined;
    this._onOnline = () => this._networkChanged(true);
    this._onOffline = () => this._networkChanged(false);
    if (this.options.autoConnect) this.connect().catch(() => {});
  }

  // The seed's API -------------------------------------------------------------------------

  /** Listen for pushes (and replies to send()) named `event`; `{once: true}` for one call. */
  on(event, listener, options = {}) {
    this._events.on(event, listener, typeof options === "boolean" ? options : options?.once);
    return this;
  }

  /** Stop listening; without `listener`, remove every listener of `event`. */
  off(event, listener) {
    this._events.off(event, listener);
    return this;
  }

  /**
   * Run `fn(client)` each time the client connects (after every (re)connect, authenticate
   * and resume). Calls queued while disconnected wait until every handler, and the promise
   * it returned, has finished; calls made meanwhile go out at once.
   */
  onready(fn) {
    this._life.on("ready", fn);
    if (this.state === "ready" || this.state === "preparing") {
      queueMicrotask(() => {
        if (this.state === "ready" || this.state === "preparing") callSafely(fn, this);
      });
    }
    return () => this._life.off("ready", fn);
  }

  /** Run `fn({code, reason, reconnecting, delay})` each time the connection closes. */
  onclose(fn) {
    return this._listen("close", fn);
  }

  /** Run `fn(error)` for errors that belong to no call (refused frames, 3000, 4429, ...). */
  onerror(fn) {
    return this._listen("error", fn);
  }

  /** Send an object as is (no request_id added); queued while disconnected. False if dropped. */
  send(obj) {
    return this._enqueue(JSON.stringify(obj)) === null;
  }

  /** True when the connection is open (and authenticated, with the session_id flow). */
  is_connected() {
    return this.state === "ready";
  }

  /** True when connected as a signed-in user: authenticate succeeded, or `user` was given. */
  is_authenticated() {
    return this.state === "ready" && (this._authenticated || this.user !== null);
  }

  // Life cycle events ----------------------------------------------------------------------

  /** Run `fn({attempt})` when a connection attempt starts (attempt 0: not a retry). */
  onconnecting(fn) {
    return this._listen("connecting", fn);
  }

  /** Run `fn({attempt, delay})` when reconnect attempt `attempt` is due in `delay` ms. */
  onreconnecting(fn) {
    return this._listen("reconnecting", fn);
  }

  /** Run `fn({attempt, code, reason, error})` when an attempt ends before the client is ready. */
  onattemptfailed(fn) {
    return this._listen("attempt_failed", fn);
  }

  /** Run `fn({stream, reason})` for a stream whose missed pushes are lost: reload its state. */
  onresync(fn) {
    return this._listen("resync", fn);
  }

  /** Run `fn(verdicts)` after each resume: {stream: {recovered, reason?, epoch?, offset?}}. */
  onresumed(fn) {
    return this._listen("resumed", fn);
  }

  _listen(event, fn) {
    this._life.on(event, fn);
    return () => this._life.off(event, fn);
  }

  // Requests -------------------------------------------------------------------------------

  /** Call one command; resolves with its result, rejects with a WSCommandsError. */
  async call(name, args = {}, options = {}) {
    const reply = await this.request({ [name]: args }, options);
    return resultOf(reply, name);
  }

  /**
   * Send several commands as one request; resolves with the whole reply object. An idempotent
   * request (`options.idempotent`, or every command named in the `idempotent` option) carries
   * an idempotency_key and is sent again, with the same key, if its reply is lost in a drop.
   */
  request(commands, options = {}) {
    if (commands === null || typeof commands !== "object" || Array.isArray(commands)) {
      return Promise.reject(new TypeError("commands must be an object: {name: argument, ...}"));
    }
    if ("request_id" in commands || "idempotency_key" in commands) {
      return Promise.reject(new TypeError("request_id and idempotency_key are set by the client"));
    }
    const id = this._nextId++;
    const timeout = limit(options.timeout ?? this.options.timeout);
    const names = Object.keys(commands);
    const idempotent = Boolean(
      options.idempotent ?? (names.length > 0 && names.every((n) => this._idempotent.has(n))),
    );
    const message = { ...commands, request_id: id };
    if (idempotent) message.idempotency_key = idempotencyKey();
    const frame = JSON.stringify(message);
    const promise = this._pending.add(id, timeout, { socket: null, idempotent, frame });
    const refused = this._enqueue(frame, id);
    if (refused !== null) this._pending.reject(id, disconnected(refused));
    return promise;
  }

  // Connection -----------------------------------------------------------------------------

  /**
   * Connect now (also cuts a reconnect wait short). Resolves when ready (onready handlers
   * done); rejects when this attempt fails (closed, refused, or not open within
   * connectTimeout), while the client goes on reconnecting as its options say.
   */
  connect() {
    if (this.state === "ready") return Promise.resolve(this);
    const waiter = new Promise((resolve, reject) => this._readyWaiters.push({ resolve, reject }));
    if (this.state === "idle" || this.state === "closed") {
      this.attempt = 0;
      this._listenNetwork(true);
      this._open();
    } else if (this.state === "waiting" || this.state === "offline") {
      this._open();
    }
    return waiter;
  }

  /** Close for good (no reconnect); waiting calls fail with code "disconnected". */
  close(code = CLOSE.NORMAL, reason = "") {
    const ws = this._ws;
    this._stop(disconnected("closed by the client"));
    if (!ws) return;
    this._detach(ws);
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
    this._life.emit("close", { code, reason, reconnecting: false, delay: null });
  }

  _open() {
    this._clearTimers();
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    this.state = "connecting";
    this._authenticated = false;
    let ws;
    try {
      const url = clientUrl(this.options.resume ? resumeUrl(this.url) : this.url, this.clientId);
      ws = new Socket(url, this.options.protocols);
    } catch (error) {
      this._stop(new WSCommandsError("connect_failed", String(error?.message ?? error)));
      return;
    }
    this._ws = ws;
    ws.onopen = () => this._opened(ws);
    ws.onmessage = (event) => this._received(ws, event.data);
    ws.onclose = (event) => this._closed(ws, event.code, event.reason);
    ws.onerror = () => {}; // a close event follows
    const ms = limit(this.options.connectTimeout);
    this._timer("connect", ms, () => {
      const error = new WSCommandsError("timeout", `not connected within ${ms} ms`);
      this._abandon(ws, "connect timeout", error);
    });
    this._life.emit("connecting", { attempt: this.attempt });
  }

  async _opened(ws) {
    if (ws !== this._ws) return;
    // Taken before any frame of this socket can move a position (the server announces its
    // current positions right after accept; taking those would skip what was missed).
    this._resumeFrom =
      this.options.resume && this._positions.size ? this._positions.snapshot() : null;
    if (this.options.authenticate === "cookie") {
      this._resume(ws);
      return;
    }
    this.state = "authenticating";
    let sessionId;
    try {
      sessionId = await this._sessionId();
    } catch (error) {
      this._abandon(ws, `no session id: ${error?.message ?? error}`);
      return;
    }
    if (ws !== this._ws) return;
    this._authId = `auth-${this._nextId++}`;
    ws.send(JSON.stringify({ authenticate: { session_id: sessionId }, request_id: this._authId }));
  }

  /** The reply to authenticate, handled at once: the server's 3000 close may follow it. */
  _authReply(ws, reply) {
    this._authId = undefined;
    const result = reply.authenticate;
    if (result?.authenticate === "success") {
      this._authenticated = true;
      this.user = result.user ?? null;
      this._resume(ws);
    } else {
      // The server closes with 3000 next: keep its message for the error.
      this._authFailure =
        result?.message ?? reply.errors?.request?.message ?? "authentication failed";
    }
  }

  async _sessionId() {
    const auth = this.options.authenticate;
    if (typeof auth === "function") return await auth();
    if (auth !== "session_id") throw new TypeError(`unknown authenticate option: ${auth}`);
    const response = await fetch(this.options.sessionIdUrl, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`${this.options.sessionIdUrl} answered ${response.status}`);
    return (await response.text()).trim();
  }

  /**
   * After a reconnect, the first requests ask for what was missed (at most
   * RESUME_MAX_STREAMS streams each); the last reply ends the resume.
   */
  _resume(ws) {
    if (!this._resumeFrom) {
      this._prepare(ws);
      return;
    }
    this.state = "resuming";
    this._verdicts = {};
    this._held = [];
    const all = Object.entries(this._resumeFrom);
    for (let i = 0; i < all.length; i += RESUME_MAX_STREAMS) {
      const streams = Object.fromEntries(all.slice(i, i + RESUME_MAX_STREAMS));
      const id = `resume-${this._nextId++}`;
      this._resuming.set(id, Object.keys(streams));
      ws.send(JSON.stringify({ [RESUME]: { streams }, request_id: id }));
    }
  }

  _resumeReply(ws, id, reply) {
    const streams = this._resuming.get(id);
    this._resuming.delete(id);
    this._releaseHeld(ws, streams);
    Object.assign(this._verdicts, this._settleResume(streams, reply));
    for (const stream of streams) delete this._resumeFrom[stream];
    if (this._resuming.size) return;
    this._resumeFrom = null;
    this._life.emit("resumed", this._verdicts);
    this._prepare(ws);
  }

  /** Let out the held pushes of `streams`: stream by stream, each in offset order. */
  _releaseHeld(ws, streams) {
    const byStream = new Map();
    const kept = [];
    for (const message of this._held) {
      const stream = message[POSITION].stream;
      if (!streams.includes(stream)) kept.push(message);
      else if (byStream.has(stream)) byStream.get(stream).push(message);
      else byStream.set(stream, [message]);
    }
    this._held = kept;
    for (const messages of byStream.values()) {
      messages.sort((a, b) => a[POSITION].offset - b[POSITION].offset);
      for (const message of messages) this._push(ws, message, message[POSITION]);
    }
  }

  /** Apply a resume reply for `streams`: fires resync per stream not recovered; the verdicts. */
  _settleResume(streams, reply) {
    const result = reply[RESUME];
    const failed = Boolean(reply.errors) || result === null || typeof result !== "object";
    if (failed) {
      const entry = reply.errors?.[RESUME] ??
        reply.errors?.request ?? { code: "resume_failed", message: "invalid resume reply" };
      this._life.emit("error", WSCommandsError.fromEntry(entry, RESUME));
    }
    const verdicts = {};
    for (const stream of streams) {
      const entry = failed ? undefined : result[stream];
      let reason;
      if (entry === null || typeof entry !== "object") {
        this._positions.giveUp(stream);
        reason = "resume_failed";
        verdicts[stream] = { recovered: false, reason };
      } else {
        reason = this._positions.settle(stream, entry);
        verdicts[stream] = entry;
      }
      if (reason) this._life.emit("resync", { stream, reason });
    }
    return verdicts;
  }

  /** Open (authenticated, resumed): run the onready handlers, then send what waited. */
  async _prepare(ws) {
    this._clearTimer("connect");
    this.state = "preparing";
    this._startHeartbeat(ws);
    for (const stream of this._positions.gaps()) this._fill(ws, stream);
    const results = this._life.emitAll("ready", this);
    await Promise.all(results.map((r) => Promise.resolve(r).catch(reportError)));
    if (ws !== this._ws || this.state !== "preparing") return;
    this.state = "ready";
    this.attempt = 0;
    for (const item of [...this._retry.splice(0), ...this._queue.splice(0)]) this._write(ws, item);
    for (const waiter of this._readyWaiters.splice(0)) waiter.resolve(this);
  }

  /** Send now, or queue until ready; returns null, or why the frame was refused. */
  _enqueue(frame, id = undefined) {
    const item = { frame, id };
    if (this.state === "ready" || this.state === "preparing") {
      this._write(this._ws, item);
      return null;
    }
    if (this.state === "closed") return "the client is closed: call connect() first";
    // Calls that timed out while queued leave their frames behind: drop those first.
    this._queue = this._queue.filter((i) => i.id === undefined || this._pending.has(i.id));
    if (this._queue.length >= this.options.queue) {
      return `not connected, and ${this._queue.length} messages already wait to be sent`;
    }
    this._queue.push(item);
    return null;
  }

  _write(ws, { frame, id }) {
    if (id !== undefined) {
      const entry = this._pending.get(id);
      if (!entry) return; // timed out while queued
      entry.socket = ws;
    }
    ws.send(frame);
  }

  _received(ws, data) {
    if (ws !== this._ws) return;
    this._clearTimer("heartbeatDeadline"); // anything arriving proves the link is alive
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      const error = new WSCommandsError(
        ERROR_CODES.INVALID_JSON,
        "the server sent a frame that is not JSON",
      );
      this._life.emit("error", error);
      return;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)) return;
    // Replies to the client's own requests (call, request, heartbeat, authenticate, resume)
    // go to their promise, or nowhere once it timed out; they never reach `on` listeners.
    const id = message.request_id;
    if (id !== undefined && id === this._authId) {
      this._authReply(ws, message);
      return;
    }
    if (this._resuming.has(id)) {
      this._resumeReply(ws, id, message);
      return;
    }
    if (this._fills.has(id)) {
      this._fillReply(id, message);
      return;
    }
    if (message[STREAMS] !== undefined) this._announced(message[STREAMS]);
    const position = message[POSITION];
    if (this._resumeFrom && isPosition(position) && position.stream in this._resumeFrom) {
      // A live push can overtake the replay (the server sent it before it read the resume
      // request): pushes of a stream being resumed wait for its reply, then go in order.
      this._held.push(message);
      return;
    }
    this._push(ws, message, position);
  }

  /** A frame that is not a reply of the client's own: a push (or a stray reply). */
  _push(ws, message, position) {
    const id = message.request_id;
    const verdict = position === undefined ? "untracked" : this._positions.accept(position);
    if (verdict === "duplicate") return;
    if (this._pending.settle(message) || this._ownsId(id)) return;
    const refused = message.errors?.request;
    if (refused) {
      this._life.emit("error", WSCommandsError.fromEntry(refused));
      return;
    }
    for (const [name, value] of Object.entries(message)) {
      if (name !== "request_id" && !name.startsWith("wscommands.")) {
        this._events.emit(name, value, message);
      }
    }
    if (verdict === "gap" || verdict === "epoch") this._lost(ws, position.stream, verdict);
  }

  _ownsId(id) {
    if (Number.isInteger(id)) return id > 0 && id < this._nextId;
    return typeof id === "string" && /^(hb|auth|resume)-\d+$/.test(id);
  }

  // Resumable streams ----------------------------------------------------------------------

  /** `wscommands.streams`: the server's current positions; null forgets a stream. */
  _announced(streams) {
    if (streams === null || typeof streams !== "object") return;
    for (const [stream, position] of Object.entries(streams)) {
      // A stream being resumed keeps its old position until the resume's reply.
      if (!(this._resumeFrom && stream in this._resumeFrom)) this._positions.set(stream, position);
    }
  }

  /** A push revealed a gap (ask for the missing range) or a new epoch (resync) in `stream`. */
  _lost(ws, stream, verdict) {
    if (this._resumeFrom && stream in this._resumeFrom) return; // the resume's reply decides
    if (verdict === "epoch") this._life.emit("resync", { stream, reason: RESUME_REASONS.HISTORY_LOST });
    else this._fill(ws, stream);
  }

  /** Ask for the offsets missing in `stream`: one request per stream at a time. */
  _fill(ws, stream) {
    // Before the socket is resumed, nothing but authenticate/resume may be sent: _prepare
    // asks for the gaps left then.
    if (ws !== this._ws || !["resuming", "preparing", "ready"].includes(this.state)) return;
    for (const streams of this._fills.values()) if (streams.includes(stream)) return;
    const id = `resume-${this._nextId++}`;
    this._fills.set(id, [stream]);
    const from = { [stream]: this._positions.snapshot()[stream] };
    ws.send(JSON.stringify({ [RESUME]: { streams: from }, request_id: id }));
  }

  _fillReply(id, reply) {
    const streams = this._fills.get(id);
    this._fills.delete(id);
    this._settleResume(streams, reply);
    for (const stream of streams) {
      if (this._positions.hasGap(stream)) this._fill(this._ws, stream);
    }
  }

  // Closing --------------------------------------------------------------------------------

  _closed(ws, code, reason, failure = undefined) {
    if (ws !== this._ws) return;
    const wasReady = this.state === "ready";
    this._detach(ws);
    this._ws = null;
    this._clearTimers();
    this._resumeFrom = null;
    this._resuming.clear();
    this._fills.clear();
    // Replies lost with the socket: idempotent requests go again once ready, others fail
    // (the command may or may not have run).
    for (const id of this._pending.idsWhere((entry) => entry.socket === ws)) {
      const entry = this._pending.get(id);
      if (entry.idempotent) {
        entry.socket = null;
        this._retry.push({ frame: entry.frame, id });
      } else {
        const why = `connection closed (${code}) before the reply came`;
        this._pending.reject(id, disconnected(why, code));
      }
    }
    const reconnect = this.options.reconnect;
    const policy = closePolicy(code, this.attempt, reconnect || DEFAULTS.reconnect);
    let error = null;
    if (policy.error) {
      const message =
        policy.error === "authentication_failed" && this._authFailure
          ? this._authFailure
          : `the server closed the connection with ${code}${reason ? `: ${reason}` : ""}`;
      error = new WSCommandsError(policy.error, message, { close_code: code });
      this._life.emit("error", error);
    }
    this._authFailure = undefined;
    this._authId = undefined;
    if (!wasReady) {
      const why =
        error ??
        failure ??
        new WSCommandsError("connect_failed", `connection closed (${code}) before it was ready`, {
          close_code: code,
        });
      this._life.emit("attempt_failed", { attempt: this.attempt, code, reason, error: why });
      for (const waiter of this._readyWaiters.splice(0)) waiter.reject(why);
    }
    if (!(reconnect && policy.reconnect && this.attempt < reconnect.maxAttempts)) {
      this._stop(error ?? disconnected(`connection closed (${code})`, code));
      this._life.emit("close", { code, reason, reconnecting: false, delay: null });
      return;
    }
    if (isOffline()) {
      // Attempts now would fail for nothing: wait for the browser's "online" event.
      this.state = "offline";
      this._life.emit("close", { code, reason, reconnecting: true, delay: null });
      return;
    }
    this.attempt += 1;
    this.state = "waiting";
    this._timer("reconnect", policy.delay, () => this._open());
    this._life.emit("close", { code, reason, reconnecting: true, delay: policy.delay });
    this._life.emit("reconnecting", { attempt: this.attempt, delay: policy.delay });
  }

  /** Give up on a socket that does not answer: close it and carry on as if it had closed. */
  _abandon(ws, reason, failure = undefined) {
    if (ws !== this._ws) return;
    this._detach(ws);
    try {
      ws.close(CLOSE.NORMAL, reason.slice(0, 100));
    } catch {
      // not open yet
    }
    this._closed(ws, 1006, reason, failure);
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  _stop(error) {
    this._clearTimers();
    this._listenNetwork(false);
    this._ws = null;
    this.state = "closed";
    this._authenticated = false;
    this._queue = [];
    this._retry = [];
    this._resumeFrom = null;
    this._resuming.clear();
    this._fills.clear();
    this._pending.rejectWhere(() => true, () => error);
    for (const waiter of this._readyWaiters.splice(0)) waiter.reject(error);
  }

  // Heartbeat, network and timers ----------------------------------------------------------

  _startHeartbeat(ws) {
    const hb = this.options.heartbeat;
    if (!hb || !(hb.interval > 0)) return;
    const beat = () => {
      this._probe(ws);
      this._timer("heartbeat", hb.interval, beat);
    };
    this._timer("heartbeat", hb.interval, beat);
  }

  /** Send a heartbeat now (unless one is unanswered); no frame in time drops the socket. */
  _probe(ws) {
    const hb = this.options.heartbeat;
    if (!hb || ws !== this._ws || "heartbeatDeadline" in this._timers) return;
    ws.send(JSON.stringify({ request_id: `hb-${++this._hbId}` }));
    this._timer("heartbeatDeadline", limit(hb.timeout), () =>
      this._abandon(ws, "heartbeat timeout"),
    );
  }

  /** The browser's online/offline events: reconnect at once, stop waiting, or check the link. */
  _networkChanged(online) {
    if (online && (this.state === "waiting" || this.state === "offline")) {
      this._open();
    } else if (!online && this.state === "waiting") {
      this._clearTimer("reconnect");
      this.state = "offline";
    } else if (this.state === "ready" || this.state === "preparing") {
      // The network changed under an open socket, which may be dead without a close.
      this._probe(this._ws);
    }
  }

  /** Run `fn` after `ms` (none for Infinity) under `name`, replacing that timer. */
  _timer(name, ms, fn) {
    this._clearTimer(name);
    if (ms === Infinity) return;
    this._timers[name] = setTimeout(() => {
      delete this._timers[name];
      fn();
    }, ms);
  }

  _clearTimer(name) {
    clearTimeout(this._timers[name]);
    delete this._timers[name];
  }

  _clearTimers() {
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
  }

  _listenNetwork(on) {
    const target = globalThis.window;
    if (!target?.addEventListener) return;
    const method = on ? "addEventListener" : "removeEventListener";
    target[method]("online", this._onOnline);
    target[method]("offline", this._onOffline);
  }
}

function disconnected(message, code = undefined) {
  const details = code === undefined ? undefined : { close_code: code };
  return new WSCommandsError("disconnected", message, details);
}

/** `fn(...args)`, or undefined (the error reported) if it throws. */
function callSafely(fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    reportError(error);
    return undefined;
  }
}

// Presence ------------------------------------------------------------------------------------
// Who is online, kept up to date from the server's presence diffs (docs/client.md, "Presence").
// Its own region: the connection's life cycle above is only used through on/onready/onclose.

/** Merge `connections` (an array of ids) into a user entry, returning the ids that were new. */
function addConnections(entry, connections) {
  const added = connections.filter((id) => !entry.connections.has(id));
  for (const id of added) entry.connections.add(id);
  return added;
}

/** A user entry as callbacks and list() hand it out: connections as a sorted array. */
function userView(entry, connections = entry.connections) {
  return { user_id: entry.user_id, username: entry.username, connections: [...connections].sort() };
}

/**
 * A live view of who is present: `new Presence(client, {group, command, args, auto})`.
 *
 * It asks `command` (default "presence.list", called with `args`, default `{group}` or `{}`)
 * for the state on every (re)connect (`auto`, default true; or call `sync()` yourself, e.g.
 * after joining the group), then applies the `presence_diff` pushes of its `group` (null:
 * server-wide). Users are merged per user: `onJoin` fires when a connection of a user
 * appears (`current` is undefined when the user was not present before), `onLeave` when one
 * goes (`current` is undefined when the user has no connection left). Guests (anonymous
 * connections) are counted per process.
 */
export class Presence {
  constructor(client, options = {}) {
    this.client = client;
    this.group = options.group ?? null;
    this.command = options.command ?? "presence.list";
    this.args = options.args ?? (this.group === null ? {} : { group: this.group });
    this.users = new Map(); // user key -> {user_id, username, connections: Set}
    this.guestsByProcess = new Map(); // process -> anonymous connections there
    this.synced = false; // a state was received since the last (re)connect
    this.truncated = false;
    this._listeners = new Emitter(); // "join", "leave", "sync"
    this._buffer = null; // diffs received while a state is on its way
    this._onDiff = (diff) => this._diff(diff);
    this._offs = [
      () => client.off("presence_diff", this._onDiff),
      client.onclose(() => {
        this.synced = false;
        this._buffer = null;
      }),
    ];
    client.on("presence_diff", this._onDiff);
    if (options.auto ?? true) {
      // A drop during the sync is no error: the next ready syncs again.
      const sync = () => this.sync().catch((e) => e?.code === "disconnected" || reportError(e));
      this._offs.push(client.onready(sync));
    }
  }

  /** `fn(key, current, joined)` when connections of a user appear. */
  onJoin(fn) {
    this._listeners.on("join", fn);
    return () => this._listeners.off("join", fn);
  }

  /** `fn(key, current, left)` when connections of a user go. */
  onLeave(fn) {
    this._listeners.on("leave", fn);
    return () => this._listeners.off("leave", fn);
  }

  /** `fn(presence)` after a state or a diff was applied. */
  onSync(fn) {
    this._listeners.on("sync", fn);
    return () => this._listeners.off("sync", fn);
  }

  /** Present users, by username: `[{user_id, username, connections}]`. */
  list() {
    return [...this.users.values()]
      .map((entry) => userView(entry))
      .sort((a, b) => String(a.username).localeCompare(String(b.username)));
  }

  /** Anonymous connections, all processes together. */
  guests() {
    let total = 0;
    for (const n of this.guestsByProcess.values()) total += n;
    return total;
  }

  /** `{users, guests, connections}` as known here. */
  count() {
    let connections = this.guests();
    for (const entry of this.users.values()) connections += entry.connections.size;
    return { users: this.users.size, guests: this.guests(), connections };
  }

  /** Ask the server for the state and merge it (diffs arriving meanwhile are applied after). */
  async sync() {
    this._buffer = this._buffer ?? [];
    let state;
    try {
      state = await this.client.call(this.command, this.args);
    } catch (error) {
      this._buffer = null;
      throw error;
    }
    const buffered = this._buffer ?? [];
    this._buffer = null;
    this._state(state);
    for (const diff of buffered) this._apply(diff);
    this.synced = true;
    this._listeners.emit("sync", this);
    return this;
  }

  /** Stop listening to the client (the view keeps its last state). */
  stop() {
    for (const off of this._offs.splice(0)) off();
  }

  _state(state) {
    const incoming = state?.users ?? {};
    for (const [key, entry] of [...this.users]) {
      const kept = new Set(incoming[key]?.connections ?? []);
      const gone = [...entry.connections].filter((id) => !kept.has(id));
      if (gone.length) this._leave(key, { ...entry, connections: gone });
    }
    for (const [key, user] of Object.entries(incoming)) this._join(key, user);
    this.guestsByProcess = new Map(Object.entries(state?.guests ?? {}));
    this.truncated = Boolean(state?.truncated);
  }

  _diff(diff) {
    if (diff === null || typeof diff !== "object" || (diff.group ?? null) !== this.group) return;
    if (this._buffer) this._buffer.push(diff);
    else if (this.synced) {
      this._apply(diff);
      this._listeners.emit("sync", this);
    }
  }

  _apply(diff) {
    // Joins first: a user who moved from one connection to another in one diff stays present.
    for (const [key, user] of Object.entries(diff.joins ?? {})) this._join(key, user);
    for (const [key, user] of Object.entries(diff.leaves ?? {})) this._leave(key, user);
    for (const [process, n] of Object.entries(diff.guests ?? {})) {
      if (n > 0) this.guestsByProcess.set(process, n);
      else this.guestsByProcess.delete(process);
    }
  }

  _join(key, user) {
    const before = this.users.get(key);
    const entry = before ?? { user_id: user.user_id, username: user.username, connections: new Set() };
    const current = before && before.connections.size ? userView(before) : undefined;
    const added = addConnections(entry, user.connections ?? []);
    if (!added.length) return;
    this.users.set(key, entry);
    this._listeners.emit("join", key, current, userView(entry, added));
  }

  _leave(key, user) {
    const entry = this.users.get(key);
    if (!entry) return;
    const removed = (user.connections ?? []).filter((id) => entry.connections.delete(id));
    if (!removed.length) return;
    if (!entry.connections.size) this.users.delete(key);
    const current = entry.connections.size ? userView(entry) : undefined;
    this._listeners.emit("leave", key, current, userView(entry, removed));
  }
}

export default WSCommands;

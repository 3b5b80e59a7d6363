// Type declarations of the wscommands browser client (wscommands.js; the classic script
// wscommands.classic.js defines the same WSCommands class as window.WSCommands).
// See docs/client.md.

/** Error codes of the protocol's `errors` entries, plus the client's own. */
export type ErrorCode =
  | ProtocolErrorCode
  // the client's own
  | "timeout"
  | "disconnected"
  | "authentication_failed"
  | "session_ended"
  | "forbidden"
  | "bad_request"
  | "message_too_big"
  | "connect_failed"
  | "resume_failed"
  | (string & {});

/** A protocol `errors` entry. */
export interface ErrorEntry {
  code: string;
  message: string;
  details?: unknown;
}

/** A failed call: the protocol's error entry (code, message, details) as an Error. */
export class WSCommandsError extends Error {
  constructor(code: ErrorCode, message: string, details?: unknown, command?: string);
  readonly name: "WSCommandsError";
  /** Machine-readable code: a protocol code, or timeout/disconnected/... from the client. */
  code: ErrorCode;
  /** `details` of the entry (e.g. `{missing: ["b"]}`), `{close_code}` for closes. */
  details: any;
  /** The command the error belongs to, when it belongs to one. */
  command?: string;
  static fromEntry(entry: ErrorEntry, command?: string): WSCommandsError;
}

export interface ReconnectOptions {
  /** Delay before the first retry, ms (default 500). */
  initialDelay?: number;
  /** Longest delay, ms (default 30000). */
  maxDelay?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Share (0..1) of each delay that may randomly be taken off (default 0.5). */
  jitter?: number;
  /** Attempts in a row before giving up (default Infinity). */
  maxAttempts?: number;
}

export interface HeartbeatOptions {
  /** How often to send `{"request_id": "hb-N"}`, ms (default 25000). */
  interval?: number;
  /** How long to wait for any frame after it before reconnecting, ms (default 10000). */
  timeout?: number;
}

export interface User {
  id: number | string;
  username: string;
}

export interface Options {
  /** "cookie" (default): the handshake's session cookie; "session_id": fetch sessionIdUrl and
   * send `authenticate` first; or a function returning the session key. */
  authenticate?: "cookie" | "session_id" | (() => string | Promise<string>);
  /** Where the session key is fetched (default "/session_id"). */
  sessionIdUrl?: string;
  /** The user the page is signed in as (cookie mode), for is_authenticated() and `user`. */
  user?: User | null;
  /** Default call/request timeout, ms, queued time included; 0: none (default 30000). */
  timeout?: number;
  /** Messages kept while disconnected (default 100); 0: calls fail at once. */
  queue?: number;
  /** Time for the handshake (and authenticate) to finish, ms; 0: none (default 10000). */
  connectTimeout?: number;
  /** Reconnect with exponential backoff and jitter (default on); false: never. */
  reconnect?: boolean | ReconnectOptions;
  /** Heartbeat (default on); false: none. */
  heartbeat?: boolean | HeartbeatOptions;
  /** Connect in the constructor (default true); otherwise call connect(). */
  autoConnect?: boolean;
  /** Opt in to resumable delivery (connect with ?resume=1): missed pushes are recovered
   * after a reconnect, duplicates dropped, gaps filled (default false). */
  resume?: boolean;
  /** Commands safe to run twice: a request made only of these is sent again, with the same
   * idempotency_key, when its reply was lost in a drop (default []). */
  idempotent?: string[];
  /** WebSocket subprotocols. */
  protocols?: string | string[];
  /** A WebSocket constructor to use instead of globalThis.WebSocket. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
}

export interface CallOptions {
  /** Timeout for this call, ms, time waiting to be (re)sent included; 0: none. */
  timeout?: number;
  /** Send it again with the same idempotency_key if its reply is lost in a drop (default:
   * whether every command of the request is named in the `idempotent` option). */
  idempotent?: boolean;
}

/** `onconnecting`: an attempt starts; 0 for the first, n for the n-th retry. */
export interface ConnectingInfo {
  attempt: number;
}

/** `onreconnecting`: retry number `attempt` is due in `delay` ms. */
export interface ReconnectingInfo {
  attempt: number;
  delay: number;
}

/** `onattemptfailed`: an attempt ended before the client was ready. */
export interface AttemptFailedInfo {
  attempt: number;
  /** The close code (1006 for a timeout or a socket that never opened). */
  code: number;
  reason: string;
  /** What connect() rejected with: connect_failed, timeout, authentication_failed, ... */
  error: WSCommandsError;
}

/** A position in a stream ("all", "group:<name>", "user:<pk>"). */
export interface Position {
  epoch: string;
  offset: number;
}

/** Why a stream's missed pushes could not be recovered. */
export type ResyncReason = Exclude<ResumeReason, "forbidden"> | "resume_failed";

/** `onresync`: the app should reload the state that `stream` feeds. */
export interface ResyncInfo {
  stream: string;
  reason: ResyncReason;
}

/** The server's verdict on one stream of a resume. */
export interface ResumeVerdict {
  recovered: boolean;
  /** When not recovered: a ResyncReason, or "forbidden" (may no longer receive it). */
  reason?: ResyncReason | "forbidden";
  /** The stream's current position (absent for "forbidden"). */
  epoch?: string;
  offset?: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Whether the client will reconnect, after `delay` ms. */
  reconnecting: boolean;
  delay: number | null;
}

export type State =
  | "idle"
  | "connecting"
  | "authenticating"
  /** the first request after a reconnect recovers missed pushes */
  | "resuming"
  /** onready handlers run: calls made now go out, queued ones wait */
  | "preparing"
  | "ready"
  | "waiting"
  /** disconnected while the browser has no network: waits for its "online" event */
  | "offline"
  | "closed";

/** A reply object: results by command name, `errors`, and the `request_id`. */
export interface Reply {
  /** Each failed command's entry; `unimplemented`: the names no command answers to. */
  errors?: { [command: string]: ErrorEntry | string[] | undefined; unimplemented?: string[] };
  request_id?: string | number;
  [command: string]: any;
}

/** One command's types: the argument `call` takes and the result it resolves with. */
export interface CommandType {
  params: unknown;
  result: unknown;
}

/** Commands by name (an interface such as the generated `Commands`). */
export type CommandMap<C> = { [K in keyof C]: CommandType };

/** The default: any name, any argument, any result. */
export interface AnyCommands {
  [name: string]: { params: any; result: any };
}
/** The default: any event, any value. */
export interface AnyPushes {
  [event: string]: any;
}

/** `call`'s arguments after the name: optional when the command needs none (null fits). */
export type CallArgs<T extends CommandType> = null extends T["params"]
  ? [args?: T["params"], options?: CallOptions]
  : [args: T["params"], options?: CallOptions];

/** `request`'s reply: each command's result typed (absent when it failed or returned nothing). */
export type TypedReply<C extends CommandMap<C>, K extends keyof C> = Reply & {
  [N in K]?: C[N]["result"];
};

/**
 * The client. With the generated maps, `new WSCommands<Commands, Pushes>()` type-checks each
 * call's name and argument, its result, and each push listener (see docs/client.md).
 */
export class WSCommands<C extends CommandMap<C> = AnyCommands, P extends object = AnyPushes> {
  /** `url` defaults to ws(s)://<page host>/ws/. */
  constructor(url?: string, options?: Options);
  constructor(options: Options);

  readonly url: string;
  readonly options: Required<Options>;
  /** Current state; "ready" means calls are sent at once. */
  readonly state: State;
  /** Reconnect attempts since the client was last ready. */
  readonly attempt: number;
  /** Who the connection acts as, when known (authenticate's reply, or options.user). */
  user: User | null;
  /** This client's random token, sent on every socket as `?client=`: an anonymous client's
   * idempotent requests are recorded under it, so a retry after a reconnect finds them. */
  readonly clientId: string;

  /** Call one command; resolves with its result (undefined if it returned nothing). */
  call<K extends keyof C & string>(name: K, ...args: CallArgs<C[K]>): Promise<C[K]["result"]>;
  /** Several commands in one request; resolves with the whole reply (errors included). */
  request<R extends { [K in keyof C & string]?: C[K]["params"] }>(
    commands: R,
    options?: CallOptions,
  ): Promise<TypedReply<C, keyof R & keyof C>>;
  /** Send an object as is, without request_id; false if it could not be sent or queued. */
  send(message: unknown): boolean;

  /** Listen for pushes named `event` (and keys of replies to send()). */
  on<E extends keyof P & string>(
    event: E,
    listener: (value: P[E], message: Record<string, any>) => void,
    options?: { once?: boolean } | boolean,
  ): this;
  off<E extends keyof P & string>(
    event: E,
    listener?: (value: P[E], message: Record<string, any>) => void,
  ): this;
  /** After each (re)connect (authentication and resume done); queued calls are sent once
   * every handler, and the promise it returned, has finished. Returns a remover. */
  onready(fn: (client: this) => void | Promise<unknown>): () => void;
  onclose(fn: (info: CloseInfo) => void): () => void;
  /** Errors that belong to no call; returns a function that removes the listener. */
  onerror(fn: (error: WSCommandsError) => void): () => void;
  /** An attempt starts. Each of these returns a function that removes the listener. */
  onconnecting(fn: (info: ConnectingInfo) => void): () => void;
  /** A retry is scheduled (not while the browser is offline: it waits for "online"). */
  onreconnecting(fn: (info: ReconnectingInfo) => void): () => void;
  /** An attempt failed before the client was ready (connect() rejects with `error`). */
  onattemptfailed(fn: (info: AttemptFailedInfo) => void): () => void;
  /** With `resume`: a stream's missed pushes are lost; reload the state it feeds. */
  onresync(fn: (info: ResyncInfo) => void): () => void;
  /** With `resume`: after each resume, the verdict per stream (before onready). */
  onresumed(fn: (verdicts: Record<string, ResumeVerdict>) => void): () => void;

  is_connected(): boolean;
  is_authenticated(): boolean;

  /** Connect (or reconnect now); resolves when ready (onready handlers done), rejects when
   * this attempt fails (the client still reconnects as its options say). */
  connect(): Promise<this>;
  /** Close for good; waiting calls fail with "disconnected". */
  close(code?: number, reason?: string): void;

}

export const DEFAULTS: Readonly<Options>;
// BEGIN GENERATED wire constants: `python -m wscommands.wire.jsconstants` writes this
// from wscommands/wire/codes.py: do not edit by hand.

/** Close codes (docs/protocol.md): the server's, then those of the WebSocket layer. */
export const CLOSE: Readonly<{
  NORMAL: 1000;
  AUTHENTICATION_FAILED: 3000;
  FORBIDDEN: 3003;
  BAD_REQUEST: 4400;
  SESSION_ENDED: 4401;
  TOO_BIG: 4413;
  TOO_MANY_REQUESTS: 4429;
  SERVER_ERROR: 4500;
  SHUTTING_DOWN: 4503;
  GOING_AWAY: 1001;
  NO_STATUS: 1005;
  ABNORMAL: 1006;
  POLICY_VIOLATION: 1008;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  SERVICE_RESTART: 1012;
  RESTARTING: 4503;
}>;
/** The codes of the protocol's `errors` entries. */
export const ERROR_CODES: Readonly<{
  CLIENT_ERROR: "client_error";
  UNKNOWN_COMMAND: "unknown_command";
  INVALID_ARGUMENTS: "invalid_arguments";
  NOT_AUTHENTICATED: "not_authenticated";
  PERMISSION_DENIED: "permission_denied";
  RATE_LIMITED: "rate_limited";
  UNAVAILABLE: "unavailable";
  COMMAND_FAILED: "command_failed";
  INVALID_JSON: "invalid_json";
  INVALID_REQUEST: "invalid_request";
}>;
/** An error code of the protocol's `errors` entries. */
export type ProtocolErrorCode =
  | "client_error"
  | "unknown_command"
  | "invalid_arguments"
  | "not_authenticated"
  | "permission_denied"
  | "rate_limited"
  | "unavailable"
  | "command_failed"
  | "invalid_json"
  | "invalid_request";
/** Reserved keys of resumable delivery's frames; never emitted as events. */
export const POSITION: "wscommands.position";
export const STREAMS: "wscommands.streams";
export const RESUME: "wscommands.resume";
/** Most streams one resume request names; more go in several requests. */
export const RESUME_MAX_STREAMS: 100;
/** Why the server did not recover a stream (a resume reply's `reason`). */
export const RESUME_REASONS: Readonly<{
  HISTORY_LOST: "history_lost";
  TOO_FAR_BEHIND: "too_far_behind";
  FORBIDDEN: "forbidden";
  INVALID: "invalid";
}>;
export type ResumeReason = "history_lost" | "too_far_behind" | "forbidden" | "invalid";
// END GENERATED wire constants
export const RATE_LIMITED_DELAY: number;
export const RESYNC_REASONS: readonly ResyncReason[];

/** The client's bookkeeping of stream positions (exported for tests and tools). */
export class StreamPositions {
  readonly size: number;
  has(stream: string): boolean;
  /** Where to resume from: per stream, the last offset before anything missing. */
  snapshot(): Record<string, Position>;
  set(stream: string, position: Position | null): void;
  hasGap(stream: string): boolean;
  gaps(): string[];
  accept(position: Position & { stream: string }): "new" | "duplicate" | "gap" | "epoch" | "untracked";
  settle(stream: string, verdict: ResumeVerdict): ResyncReason | null;
  giveUp(stream: string): void;
}

/** A fresh idempotency_key: 128 random bits as 32 hex digits. */
export function idempotencyKey(): string;
/** `url` with resume=1 in its query. */
export function resumeUrl(url: string): string;

/** Delay before reconnect attempt `attempt` (0-based), with jitter. */
export function backoffDelay(
  attempt: number,
  options?: ReconnectOptions,
  random?: () => number,
): number;
/** The result of `name` in `reply`; throws its WSCommandsError if it failed. */
export function resultOf<T = any>(reply: Reply, name: string): T;

/** A user as presence reports it; `connections` are connection ids. */
export interface PresenceUser {
  user_id: any;
  username: string | null;
  connections: string[];
}

/** What `get_presence_state` returns (and the demo's `presence.list`). */
export interface PresenceState {
  group: string | null;
  users: Record<string, PresenceUser>;
  guests: Record<string, number>;
  count: { connections: number; users: number; guests: number };
  truncated: boolean;
}

/** The `presence_diff` push. */
export interface PresenceDiff {
  group: string | null;
  joins: Record<string, PresenceUser>;
  leaves: Record<string, PresenceUser>;
  guests: Record<string, number>;
}

export interface PresenceOptions {
  /** null (default): server-wide presence; a name: that group's members. */
  group?: string | null;
  /** The command returning the state; default "presence.list". */
  command?: string;
  /** Its argument; default `{group}` (or `{}` for null). */
  args?: unknown;
  /** Sync on every (re)connect (default true); false: call sync() yourself. */
  auto?: boolean;
}

/** A live view of who is present, from a state and then presence diffs (docs/client.md). */
export class Presence {
  constructor(client: WSCommands<any, any>, options?: PresenceOptions);
  readonly group: string | null;
  /** False from a close until the next state arrived. */
  readonly synced: boolean;
  /** The server left users out of the last state. */
  readonly truncated: boolean;
  readonly guestsByProcess: Map<string, number>;
  /** `current` is undefined when the user was not present before. */
  onJoin(fn: (key: string, current: PresenceUser | undefined, joined: PresenceUser) => void): () => void;
  /** `current` is undefined when the user's last connection went. */
  onLeave(fn: (key: string, current: PresenceUser | undefined, left: PresenceUser) => void): () => void;
  onSync(fn: (presence: this) => void): () => void;
  /** Present users, by username. */
  list(): PresenceUser[];
  /** Anonymous connections, all processes together. */
  guests(): number;
  count(): { users: number; guests: number; connections: number };
  /** Ask for the state now and merge it. */
  sync(): Promise<this>;
  stop(): void;
}

/** Listeners by event name, with `once` and `off`; a throwing listener does not stop others. */
export class Emitter {
  on(event: string, listener: (...args: any[]) => unknown, once?: boolean): void;
  /** Remove `listener` from `event`; without a listener, every listener of `event`. */
  off(event: string, listener?: (...args: any[]) => unknown): void;
  /** Call the listeners of `event` with `args`; returns how many were called. */
  emit(event: string, ...args: any[]): number;
  /** Call the listeners of `event` with `args`; returns what each returned (or undefined). */
  emitAll(event: string, ...args: any[]): unknown[];
  count(event: string): number;
}

/** Requests waiting for their reply, by request_id (pure bookkeeping, no socket). */
export class PendingRequests {
  readonly size: number;
  has(id: string | number): boolean;
  /** Register request `id`; returns its promise. `timeout` ms (0: none) rejects with "timeout". */
  add(id: string | number, timeout?: number, meta?: Record<string, unknown>): Promise<Reply>;
  get(id: string | number): Record<string, any> | undefined;
  /** Settle the request a reply belongs to; false if no request waits for its request_id. */
  settle(reply: Reply): boolean;
  reject(id: string | number, error: WSCommandsError): boolean;
  /** Reject every request for which `predicate(entry)` holds. */
  rejectWhere(predicate: (entry: Record<string, any>) => boolean, makeError: () => Error): void;
  /** The ids of the requests for which `predicate(entry)` holds, oldest first. */
  idsWhere(predicate: (entry: Record<string, any>) => boolean): (string | number)[];
}

/** What to do after the server closed with `code`, at reconnect attempt `attempt`. */
export function closePolicy(
  code: number,
  attempt: number,
  reconnect: ReconnectOptions,
  random?: () => number,
): { reconnect: boolean; delay?: number; error?: ErrorCode };
/** `options` over DEFAULTS; `reconnect`/`heartbeat` may be true, false or partial objects. */
export function withDefaults(options?: Options): Required<Options>;

export default WSCommands;

/**
 * The classic script's `window.WSCommands`: the class, with every other export of the module
 * as a property (`WSCommands.CLOSE`, `WSCommands.WSCommandsError`, ...). The ES module's
 * class has none of them: import them by name.
 */
export type ClassicWSCommands = typeof WSCommands & {
  readonly WSCommandsError: typeof WSCommandsError;
  readonly DEFAULTS: typeof DEFAULTS;
  readonly CLOSE: typeof CLOSE;
  readonly ERROR_CODES: typeof ERROR_CODES;
  readonly RATE_LIMITED_DELAY: typeof RATE_LIMITED_DELAY;
  readonly POSITION: typeof POSITION;
  readonly STREAMS: typeof STREAMS;
  readonly RESUME: typeof RESUME;
  readonly RESYNC_REASONS: typeof RESYNC_REASONS;
  readonly RESUME_MAX_STREAMS: typeof RESUME_MAX_STREAMS;
  readonly RESUME_REASONS: typeof RESUME_REASONS;
  readonly StreamPositions: typeof StreamPositions;
  readonly Presence: typeof Presence;
  readonly Emitter: typeof Emitter;
  readonly PendingRequests: typeof PendingRequests;
  readonly backoffDelay: typeof backoffDelay;
  readonly closePolicy: typeof closePolicy;
  readonly withDefaults: typeof withDefaults;
  readonly idempotencyKey: typeof idempotencyKey;
  readonly resumeUrl: typeof resumeUrl;
  readonly resultOf: typeof resultOf;
};

declare global {
  interface Window {
    /** Defined by wscommands.classic.js. */
    WSCommands: ClassicWSCommands;
  }
}

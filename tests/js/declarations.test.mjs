// wscommands.d.ts describes what the module does: a program using the life-cycle events,
// resume and idempotent calls compiles under tsc --strict, and misuses are refused
// (each `@ts-expect-error` line must be an error, or tsc fails the test).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(ROOT, "node_modules", ".bin", "tsc");

const PROGRAM = `
import { WSCommands, StreamPositions, type ResyncReason, type State } from "./wscommands.js";

const client = new WSCommands({ resume: true, idempotent: ["counter.get"] });
client.onready(async (c) => {
  await c.call("chat.join", { room: "lobby" });
});
client.onconnecting(({ attempt }) => attempt.toFixed());
client.onreconnecting(({ attempt, delay }) => attempt + delay);
client.onattemptfailed(({ code, reason, error }) => [code + 1, reason.length, error.code]);
client.onresync(({ stream, reason }) => {
  const why: ResyncReason = reason;
  return stream.length + why.length;
});
client.onresumed((verdicts) => verdicts["group:lobby"]?.recovered === true);
client.call("counter.get", null, { idempotent: true, timeout: 0 });
const waiting: State[] = ["resuming", "preparing", "offline"];
const positions = new StreamPositions();
const verdict: "new" | "duplicate" | "gap" | "epoch" | "untracked" = positions.accept({
  stream: "all",
  epoch: "e1",
  offset: 1,
});
export const used = [waiting, verdict, client.connect()];

// @ts-expect-error: idempotent is a boolean per call
client.call("x", {}, { idempotent: "yes" });
// @ts-expect-error: the option names commands
new WSCommands({ idempotent: true });
// @ts-expect-error: delay is a number
client.onreconnecting(({ delay }) => delay.toUpperCase());
// @ts-expect-error: not a state
const bad: State = "reconnecting";
export { bad };
`;

test("the declarations type the client's resume, idempotent and life-cycle API", (t) => {
  if (!existsSync(TSC)) {
    if (process.env.CI) assert.fail("node_modules/.bin/tsc missing: run npm ci");
    t.skip("tsc not installed: run npm ci (python3 dev.py does)");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "wscommands-dts-"));
  copyFileSync(join(ROOT, "wscommands/static/wscommands/wscommands.d.ts"), join(dir, "wscommands.d.ts"));
  writeFileSync(join(dir, "main.ts"), PROGRAM);
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022"];
  args.push("--moduleResolution", "bundler", "--lib", "es2022,dom", "main.ts", "wscommands.d.ts");
  const result = spawnSync(TSC, args, { cwd: dir, encoding: "utf8" });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

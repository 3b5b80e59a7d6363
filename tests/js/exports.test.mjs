// wscommands.d.ts against the module it declares: the same exports, no static the ES module's
// class lacks, the classic build's window.WSCommands declared with what it really carries, and
// tsc (--strict) agreeing: module statics refused, classic statics and errors.unimplemented
// typed as they are.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

import * as module from "../../wscommands/static/wscommands/wscommands.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const STATIC = join(ROOT, "wscommands/static/wscommands");
const DTS = readFileSync(join(STATIC, "wscommands.d.ts"), "utf8");
const TSC = join(ROOT, "node_modules", ".bin", "tsc");

/** The value exports a declaration file names (types and interfaces are not values). */
function declaredValues(text) {
  const names = [...text.matchAll(/^export (?:declare )?(?:const|function|class) (\w+)/gm)];
  const values = new Set(names.map((m) => m[1]));
  if (/^export default \w+;/m.test(text)) values.add("default");
  return values;
}

/** The body of `export class <name> ... {` up to its closing brace at column 0. */
function classBody(text, name) {
  const start = text.search(new RegExp(`^export class ${name}\\b`, "m"));
  assert.ok(start >= 0, `class ${name} not declared`);
  return text.slice(start, text.indexOf("\n}\n", start));
}

test("the declarations name exactly the module's exports", () => {
  assert.deepEqual([...declaredValues(DTS)].sort(), Object.keys(module).sort());
});

test("no static is declared that the ES module's class lacks", () => {
  const statics = [...classBody(DTS, "WSCommands").matchAll(/^ {2}static (\w+)/gm)].map((m) => m[1]);
  for (const name of statics) assert.ok(name in module.WSCommands, `WSCommands.${name}`);
});

test("window.WSCommands of the classic build carries what ClassicWSCommands declares", () => {
  const context = { globalThis: {} };
  vm.runInNewContext(readFileSync(join(STATIC, "wscommands.classic.js"), "utf8"), context);
  const classic = context.globalThis.WSCommands;
  const declared = DTS.slice(DTS.indexOf("export type ClassicWSCommands"));
  const names = [...declared.slice(0, declared.indexOf("};")).matchAll(/readonly (\w+):/g)];
  const extra = Object.keys(module).filter((n) => n !== "default" && n !== "WSCommands");
  assert.deepEqual(names.map((m) => m[1]).sort(), extra.sort());
  for (const name of extra) assert.ok(name in classic, `window.WSCommands.${name}`);
});

const PROGRAM = `
import WSCommands, { CLOSE, Emitter, PendingRequests, closePolicy, withDefaults } from "./wscommands.js";
import type { Reply } from "./wscommands.js";

const normal: 1000 = CLOSE.NORMAL;
const classicNormal: number = window.WSCommands.CLOSE.NORMAL;
const error = new window.WSCommands.WSCommandsError("timeout", "late");
const emitter = new Emitter();
emitter.on("x", () => 1);
const pending = new PendingRequests();
const policy = closePolicy(4503, 0, withDefaults().reconnect as object);
declare const reply: Reply;
const unimplemented: string[] | undefined = reply.errors?.unimplemented;
export const used = [normal, classicNormal, error, emitter.emit("x"), pending.size, policy];
export { unimplemented };

// @ts-expect-error: the ES module's class has no CLOSE (import it by name)
WSCommands.CLOSE;
// @ts-expect-error: nor backoffDelay
WSCommands.backoffDelay(1);
// @ts-expect-error: unimplemented is a list of names, not an error entry
reply.errors?.unimplemented?.code;
`;

test("tsc --strict agrees with the module: statics, helpers, errors.unimplemented", (t) => {
  if (!existsSync(TSC)) {
    if (process.env.CI) assert.fail("node_modules/.bin/tsc missing: run npm ci");
    t.skip("tsc not installed: run npm ci (python3 dev.py does)");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "wscommands-exports-"));
  copyFileSync(join(STATIC, "wscommands.d.ts"), join(dir, "wscommands.d.ts"));
  writeFileSync(join(dir, "main.ts"), PROGRAM);
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022"];
  args.push("--moduleResolution", "bundler", "--lib", "es2022,dom", "main.ts", "wscommands.d.ts");
  const result = spawnSync(TSC, args, { cwd: dir, encoding: "utf8" });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

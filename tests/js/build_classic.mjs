// Generates wscommands.classic.js (a classic <script>) from the ES module wscommands.js:
// the same code inside a function, exposing window.WSCommands (the other exports become its
// properties: WSCommands.WSCommandsError, ...). Run after editing the module:
//     node tests/js/build_classic.mjs
// logic.test.mjs fails while the committed file differs from what this writes. The wire
// constants' block comes from `python -m wscommands.wire.jsconstants`: run that first.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const DIR = new URL("../../wscommands/static/wscommands/", import.meta.url);
export const MODULE = fileURLToPath(new URL("wscommands.js", DIR));
export const CLASSIC = fileURLToPath(new URL("wscommands.classic.js", DIR));

/** The classic script's text for the module's source text. */
export function classicFrom(source) {
  if (/^import\s/m.test(source)) throw new Error("the module must not import anything");
  const names = [...source.matchAll(/^export (?:const|class|function) (\w+)/gm)].map((m) => m[1]);
  const body = source
    .replace(/^export default \w+;\n/m, "")
    .replace(/^export (const|class|function) /gm, "$1 ");
  const extra = names.filter((n) => n !== "WSCommands").join(", ");
  return [
    "// GENERATED from wscommands.js by tests/js/build_classic.mjs: do not edit by hand.",
    "// Classic-script build of the wscommands client: defines window.WSCommands.",
    "(function () {",
    '"use strict";',
    "",
    body.trimEnd(),
    "",
    `Object.assign(WSCommands, { ${extra} });`,
    "globalThis.WSCommands = WSCommands;",
    "})();",
    "",
  ].join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(CLASSIC, classicFrom(readFileSync(MODULE, "utf8")));
  console.log(`wrote ${CLASSIC}`);
}

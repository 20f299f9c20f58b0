// Lets the MCP conformance suite (@modelcontextprotocol/conformance) start on Node 20.
//
// Its bundle imports `globSync` from "fs", which Node added in 22; on Node 20 the import fails
// at link time, before any scenario runs. The suite only calls it in `tier-check`, which the
// tests never run. So, on a Node without fs.globSync, a resolve hook hands the suite's own
// imports of "fs" a module with everything of node:fs plus a `globSync` that says what it
// needs. On Node 22 and later this file does nothing.
//
//   node --import ./tests/peers/conformance_node20.mjs node_modules/@modelcontextprotocol/conformance/dist/index.js ...
import * as fs from "node:fs";
import { register } from "node:module";

if (typeof fs.globSync !== "function") {
  const shim = [
    'export * from "node:fs";',
    'import fs from "node:fs";',
    "export default fs;",
    "export function globSync() {",
    '  throw new Error("fs.globSync needs Node 22 (the conformance tier-check command)");',
    "}",
  ].join("\n");
  const shimUrl = "data:text/javascript," + encodeURIComponent(shim);
  const hooks = `
const SHIM = ${JSON.stringify(shimUrl)};
export async function resolve(specifier, context, next) {
  const parent = context.parentURL || "";
  if ((specifier === "fs" || specifier === "node:fs") && parent.includes("/conformance")
      && parent.includes("/node_modules/")) {
    return { url: SHIM, shortCircuit: true };
  }
  return next(specifier, context);
}`;
  register("data:text/javascript," + encodeURIComponent(hooks));
}

// The checked-in types are what openapi-typescript makes of the document the service serves.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import { LimitryServer } from "./harness.js";

const packageDir = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
let server: LimitryServer;
before(async () => {
  server = await LimitryServer.start();
});
after(async () => {
  await server.close();
});

test("src/generated/api.ts matches the served /v1/openapi.json", async () => {
  const { generate } = (await import(join(packageDir, "scripts", "codegen.mjs"))) as { generate: (doc: unknown) => Promise<string> };
  const served = await (await fetch(`${server.url}/v1/openapi.json`)).json();
  const expected = await generate(served);
  const checkedIn = await readFile(join(packageDir, "src", "generated", "api.ts"), "utf8");
  assert.ok(expected === checkedIn, "src/generated/api.ts drifted from /v1/openapi.json: run clients/generate.sh");
});

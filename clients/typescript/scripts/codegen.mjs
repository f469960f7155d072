// Generates src/generated/api.ts from an OpenAPI document with openapi-typescript. Used by
// clients/generate.sh and by the drift test, so both run the very same generator.
//
//   node scripts/codegen.mjs OPENAPI_JSON OUT_TS
import { readFile, writeFile } from "node:fs/promises";
import openapiTS, { astToString } from "openapi-typescript";

export const HEADER =
  "// Generated from clients/openapi.json by clients/generate.sh (openapi-typescript).\n" +
  "// Do not edit: run clients/generate.sh.\n\n";

/** The TypeScript source for an OpenAPI document (a parsed object). */
export async function generate(document) {
  // emptyObjectsUnknown: free JSON (metadata, properties) is `{"type": "object"}` in the document,
  // which would otherwise become Record<string, never>.
  const ast = await openapiTS(document, { alphabetize: false, exportType: false, emptyObjectsUnknown: true });
  return HEADER + astToString(ast);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [input, output] = process.argv.slice(2);
  const document = JSON.parse(await readFile(input, "utf8"));
  await writeFile(output, await generate(document));
}

// Validates an OpenAPI document with @apidevtools/swagger-parser (pinned by
// package-lock.json beside this file; scripts/test.sh runs npm ci here):
// the document against the OpenAPI 3.1 schema, then every $ref resolved.
// Usage: node validate.js FILE; prints "valid" and exits 0, or prints the
// validator's error and exits 1.
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
try {
  const api = await SwaggerParser.validate(file);
  console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`);
} catch (err) {
  console.error(err.message);
  process.exit(1);
}

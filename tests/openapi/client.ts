// A client written against the types openapi-typescript generates from our
// /openapi.json (into build/api.d.ts), with openapi-fetch: tsc --strict
// type-checks every path, parameter and body below against the document,
// then node runs it against the server. Usage: node build/client.js BASE EMAIL PASSWORD
// Prints one JSON line of what it saw.
import createClient from "openapi-fetch";
import type { components, paths } from "./build/api.js";

type ProjectRead = components["schemas"]["ProjectRead"];
declare const process: { argv: string[] }; // node's, without @types/node

const [base, email, password] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: base });

const login = await client.POST("/auth/token/login/", {
  body: { username: email, password },
  bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
});
if (!login.data) throw new Error(`login: ${login.response.status}`);
const headers = { Authorization: `Bearer ${login.data.access_token}` };

const created = await client.POST("/api/v2/project/", { body: { name: "from-the-client" }, headers });
if (!created.data) throw new Error(`create: ${created.response.status}`);
const project: ProjectRead = created.data;

const one = await client.GET("/api/v2/project/{project_id}/", { params: { path: { project_id: project.id } }, headers });
const list = await client.GET("/api/v2/project/", { params: { query: { is_owner: true } }, headers });
const wf = await client.POST("/api/v2/project/{project_id}/workflow/", {
  params: { path: { project_id: project.id } },
  body: { name: "wf" },
  headers,
});
const bad = await client.POST("/api/v2/project/", { body: { name: "" }, headers });

console.log(JSON.stringify({
  project,
  same: one.data?.name === project.name,
  count: list.data?.length,
  workflow_tasks: wf.data?.task_list.length,
  bad_status: bad.response.status,
  bad_detail: bad.error,
}));

// Validates Kubernetes objects against the OpenAPI schemas of the npm
// packages kubernetes-models and @kubernetes-models/prometheus-operator,
// offline. Reads a JSON array of objects on stdin; prints one line per
// object and exits 1 if any is invalid or has no schema.
//
//   node validate.mjs <node_modules dir> < objects.json
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
// API groups served by the packages, and where their models live.
const packages = [
  { test: (g) => g === "monitoring.coreos.com", dir: "@kubernetes-models/prometheus-operator" },
  { test: () => true, dir: "kubernetes-models" },
];

async function model(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  const pkg = packages.find((p) => p.test(group));
  const file = join(modules, pkg.dir, apiVersion, `${kind}.js`);
  const mod = await import(pathToFileURL(file).href);
  return mod[kind];
}

let failed = false;
for (const obj of JSON.parse(readFileSync(0, "utf8"))) {
  const name = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
  try {
    const Model = await model(obj.apiVersion, obj.kind);
    new Model(obj).validate();
    console.log(`ok ${name}`);
  } catch (err) {
    failed = true;
    console.log(`INVALID ${name}: ${err.message}${err.errors ? " " + JSON.stringify(err.errors) : ""}`);
  }
}
process.exit(failed ? 1 : 0);

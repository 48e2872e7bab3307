// Checks of the chart's values: the schema itself, values.yaml and every CI values file against
// it (after the merge Helm does), and a comment on every key of values.yaml.
import { YAML } from "./deps.mjs";

const { LineCounter, isPair, isSeq, parseDocument, visit } = YAML;

/**
 * Helm's coalescing of a values file over the chart's values: maps merge key by key, anything
 * else replaces, and null deletes the key.
 */
export function coalesce(base, over) {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else out[key] = key in base ? coalesce(base[key], value) : value;
  }
  return out;
}

const isPlainObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Every object schema must say what it does with unknown keys: `false`, or a schema for the
 * values of a free-form map. `true` is allowed only in the definitions named k8s* that pass
 * Kubernetes objects through for Kubernetes to validate.
 */
export function schemaOpenings(schema) {
  const problems = [];
  const walk = (node, path) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}/${i}`));
    if (!isPlainObject(node)) return;
    const isObjectSchema = node.type === "object" || (node.properties && node.type === undefined && !path.includes("/allOf/"));
    if (isObjectSchema && !("additionalProperties" in node)) problems.push(`${path}: object without additionalProperties`);
    if (node.additionalProperties === true && !/^#\/definitions\/k8s[A-Z]/.test(path)) {
      problems.push(`${path}: additionalProperties true outside the k8s pass-through definitions`);
    }
    for (const [key, child] of Object.entries(node)) {
      // Keys of `properties` and `definitions` are names, not keywords.
      if (key === "properties" || key === "definitions") {
        for (const [name, sub] of Object.entries(child)) walk(sub, `${path}/${key}/${name}`);
      } else if (key !== "enum" && key !== "const" && key !== "required") {
        walk(child, `${path}/${key}`);
      }
    }
  };
  walk(schema, "#");
  return problems;
}

/**
 * Keys of values.yaml that have no comment: neither on the lines just above nor after the value
 * on the same line. Keys inside lists are Kubernetes objects given as examples and are exempt.
 */
export function uncommentedKeys(text) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const lines = text.split("\n");
  const missing = [];
  visit(doc, {
    Pair(_, pair, path) {
      if (path.some((node) => isSeq(node))) return visit.SKIP;
      const { line } = lineCounter.linePos(pair.key.range[0]);
      const own = lines[line - 1];
      const above = lines[line - 2] ?? "";
      if (!/^\s*#/.test(above) && !/\s#\s/.test(own)) {
        const keys = path.filter(isPair).map((p) => p.key.value);
        missing.push([...keys, pair.key.value].join("."));
      }
    },
  });
  return missing;
}

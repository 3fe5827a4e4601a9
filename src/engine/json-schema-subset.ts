// The JSON Schema keywords constrained decoding honours (each checked by a test against xgrammar's grammar);
// any other keyword, or a keyword with a value of the wrong shape, is refused by its path instead of being
// silently ignored. Shapes are checked here because xgrammar aborts its instance on a malformed schema.

/** Keywords that only describe: accepted and ignored. */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly"]);
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
/** Deeper schemas than this are refused (a hostile one could exhaust the stack). */
const MAX_DEPTH = 32;
/**
 * Compile-cost bounds, each a 400 beyond it rather than a minute of compiling in the engine (measured at 152k
 * tokens: each unit of a string's minLength/maxLength adds a state whose mask is a pass over the vocabulary,
 * tens of ms each, 55 s for one maxLength of 200 on a loaded machine; 3,000 properties took 30 s).
 */
export const LIMITS = { lengthBounds: 64, subschemas: 512, enumValues: 4096 };

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: Json) => Number.isSafeInteger(v) && (v as number) >= 0;
const isNumber = (v: Json) => typeof v === "number" && Number.isFinite(v);

/** A problem: where (a JSON-pointer-like path under the schema, "" for the root) and what. */
export interface SchemaProblem {
  path: string;
  message: string;
}

/** The first keyword of `schema` that constrained decoding cannot honour, or undefined. */
export function schemaProblem(schema: Json): SchemaProblem | undefined {
  const root = isObject(schema) ? schema : {};
  return walk(schema, "", 0, { root, lengthBounds: 0, subschemas: 0, enumValues: 0 });
}

interface Walk {
  root: Record<string, Json>;
  lengthBounds: number;
  subschemas: number;
  enumValues: number;
}

function walk(s: Json, path: string, depth: number, w: Walk): SchemaProblem | undefined {
  const at = (key: string, message: string): SchemaProblem => ({ path: path ? `${path}.${key}` : key, message });
  if (depth > MAX_DEPTH) return { path, message: `schemas nested deeper than ${MAX_DEPTH} levels are not supported` };
  if (!isObject(s)) return { path, message: "a schema must be an object" };
  if (++w.subschemas > LIMITS.subschemas) return { path, message: `schemas of more than ${LIMITS.subschemas} subschemas are not supported (compiling grows with them)` };
  const sub = (v: Json, key: string) => walk(v, path ? `${path}.${key}` : key, depth + 1, w);
  for (const [key, v] of Object.entries(s)) {
    if (ANNOTATIONS.has(key)) continue;
    let bad: SchemaProblem | undefined;
    switch (key) {
      case "type": {
        const list = Array.isArray(v) ? v : [v];
        if (!list.length || !list.every((t) => typeof t === "string" && TYPES.has(t))) bad = at(key, `must be one of ${[...TYPES].join(", ")} (or a list of them)`);
        break;
      }
      case "properties":
        if (!isObject(v)) bad = at(key, "must be an object of schemas");
        else for (const [name, p] of Object.entries(v)) if ((bad = sub(p, `${key}.${name}`))) break;
        break;
      case "required":
        if (!Array.isArray(v) || !v.every((r) => typeof r === "string")) bad = at(key, "must be a list of property names");
        break;
      case "additionalProperties":
        if (typeof v !== "boolean") bad = sub(v, key);
        break;
      case "items":
        bad = sub(v, key);
        break;
      case "$defs":
      case "definitions":
        if (!isObject(v)) bad = at(key, "must be an object of schemas");
        else for (const [name, d] of Object.entries(v)) if ((bad = sub(d, `${key}.${name}`))) break;
        break;
      case "$ref":
        if (typeof v !== "string" || !resolves(v, w.root)) bad = at(key, `must point into this schema ("#", "#/$defs/NAME"), got ${JSON.stringify(v)}`);
        break;
      case "anyOf":
        if (!Array.isArray(v) || !v.length) bad = at(key, "must be a non-empty list of schemas");
        else for (const [i, a] of v.entries()) if ((bad = sub(a, `${key}[${i}]`))) break;
        break;
      case "enum":
        if (!Array.isArray(v) || !v.length) bad = at(key, "must be a non-empty list");
        else if ((w.enumValues += v.length) > LIMITS.enumValues) bad = at(key, `more than ${LIMITS.enumValues} enum values in a schema are not supported`);
        break;
      case "const":
        break;
      case "minItems":
      case "maxItems":
        if (!isCount(v)) bad = at(key, "must be an integer >= 0");
        break;
      case "minLength":
      case "maxLength":
        if (!isCount(v)) bad = at(key, "must be an integer >= 0");
        else if ((w.lengthBounds += v as number) > LIMITS.lengthBounds) {
          bad = at(key, `string length bounds above ${LIMITS.lengthBounds} in total (every minLength and maxLength) are not supported: each unit costs the grammar compiler a pass over the vocabulary`);
        }
        break;
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum":
        if (!isNumber(v)) bad = at(key, "must be a number");
        break;
      case "pattern":
        if (typeof v !== "string" || !validRegExp(v)) bad = at(key, `must be a valid regular expression, got ${JSON.stringify(v)}`);
        break;
      default:
        bad = at(key, `the keyword '${key}' is not supported by constrained decoding`);
    }
    if (bad) return bad;
  }
  return undefined;
}

function validRegExp(p: string): boolean {
  try {
    new RegExp(p, "u");
    return true;
  } catch {
    return false;
  }
}

/** "#", "#/$defs/a", "#/definitions/a/properties/b": a path of keys that exists in the root schema. */
function resolves(ref: string, root: Record<string, Json>): boolean {
  if (ref === "#") return true;
  if (!ref.startsWith("#/")) return false;
  let cur: Json = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (!isObject(cur) || !(key in cur)) return false;
    cur = cur[key];
  }
  return isObject(cur);
}

/**
 * The schema as handed to the grammar compiler: an object schema that lists properties gets
 * additionalProperties false. XGrammar lets an extra key repeat a listed name with any value (it cannot say
 * "any key but these"), so extra keys beside listed ones could break a listed property's schema; without them
 * every output still validates. Objects that list no properties keep what they allow. String length bounds become
 * a pattern (below). A checked schema only.
 */
export function grammarSchema(s: Json): Json {
  if (!isObject(s)) return s;
  const out: Record<string, Json> = { ...s };
  const map = (o: Json) => (isObject(o) ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, grammarSchema(v)])) : o);
  if (isObject(s.properties)) {
    out.properties = map(s.properties);
    if (Object.keys(s.properties).length) out.additionalProperties = false;
  }
  if ((s.minLength !== undefined || s.maxLength !== undefined) && s.pattern === undefined) {
    // XGrammar writes a length-bounded string as [^"\\\r\n]{m,n}, which lets raw control characters (a tab)
    // into the JSON string, so the output would not parse: the same bounds as a pattern that excludes them.
    out.pattern = `^[^\\x00-\\x1f"\\\\]{${s.minLength ?? 0},${s.maxLength ?? ""}}$`;
    delete out.minLength;
    delete out.maxLength;
  }
  if (isObject(s.additionalProperties) && out.additionalProperties !== false) out.additionalProperties = grammarSchema(s.additionalProperties);
  if (s.items !== undefined) out.items = grammarSchema(s.items);
  if (Array.isArray(s.anyOf)) out.anyOf = s.anyOf.map(grammarSchema);
  for (const k of ["$defs", "definitions"]) if (isObject(s[k])) out[k] = map(s[k]);
  return out;
}

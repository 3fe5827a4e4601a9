// OpenAI's error JSON ({error: {message, type, param, code}}) and the HTTP status that goes with it.
import type { z } from "zod";

export type ApiErrorType = "invalid_request_error" | "not_found_error" | "rate_limit_error" | "server_error";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: ApiErrorType = status === 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error",
  ) {
    super(message);
  }

  toJSON(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** "messages[0].content" from ["messages", 0, "content"]. */
function paramPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : `${s ? "." : ""}${String(p)}`;
  return s;
}

type Issue = z.core.$ZodIssue;

/**
 * A union's failure as the branch that got furthest (the longest path into the value), its path joined to the
 * union's: "messages[0].content[1].type: content blocks of type ..." rather than the union's "Invalid input".
 */
function deepest(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || !issue.errors.length) return issue;
  const best = issue.errors.map((b) => b[0]).filter(Boolean).reduce((a, b) => (b.path.length > a.path.length ? b : a));
  if (!best.path.length && best.code === "invalid_type") return issue; // no branch got in: the union's own message
  return deepest({ ...best, path: [...issue.path, ...best.path] } as Issue);
}

/** A request body validated by `schema`: a 400 naming the field otherwise. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "the request body must be a JSON object", null, "invalid_body");
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw fromZod(parsed.error);
  return parsed.data;
}

/**
 * An error of the chat pipeline as a translated API names its fields: each [pattern, replacement] is applied
 * to the message and the param ("tools[0].function.parameters" -> "tools[0].input_schema").
 */
export function renamedError(e: unknown, names: [RegExp, string][]): unknown {
  if (!(e instanceof ApiError)) return e;
  const rename = (s: string) => names.reduce((t, [re, to]) => t.replace(re, to), s);
  return new ApiError(e.status, rename(e.message), e.param && rename(`'${e.param}'`).slice(1, -1), e.code, e.type);
}

/** The first zod issue as a 400 naming the field. */
export function fromZod(err: z.ZodError): ApiError {
  const issue = deepest(err.issues[0]);
  const param = paramPath(issue.path);
  if (issue.code === "unrecognized_keys") return new ApiError(400, issue.message, param || null, "invalid_value");
  const missing = issue.code === "invalid_type" && /received undefined/.test(issue.message);
  const message = missing ? `'${param}' is required` : `'${param || "body"}': ${issue.message}`;
  return new ApiError(400, message, param || null, missing ? "missing_required_parameter" : "invalid_value");
}

/**
 * `@fluxbase:` annotations of a job function, one per line, in a JSDoc block or `//` lines.
 * Absent annotations stay undefined: defaults (timeout 300, retries 3) come from the config,
 * applied by the caller. Any malformed or unknown annotation rejects the whole function.
 */
import { Cron } from "croner";
import type { Permissions } from "../isolate/types.ts";

export interface FunctionAnnotations {
  namespace?: string;
  /** The submitter needs any one of these roles. */
  requireRoles?: string[];
  timeoutSeconds?: number;
  maxRetries?: number;
  schedule?: string;
  scheduleParams?: Record<string, unknown>;
  description?: string;
  progressTimeoutSeconds?: number;
  memoryLimitMb?: number;
  enabled?: boolean;
  permissions: Permissions;
}

export type AnnotationResult =
  | { ok: true; annotations: FunctionAnnotations }
  /** Each error reads `<file>:<line>: @fluxbase:<name> ...`. */
  | { ok: false; errors: string[] };

/** The same rule as the `jobs.functions.namespace` column check. */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ROLE_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const HOST_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*\.[A-Za-z0-9.-]+)(:\d{1,5})?$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;
const CRON_NICKNAMES = new Set([
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@hourly",
]);
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;
const MAX_RETRIES = 100;

/** Parses a value; returns an error phrase ("is not ...") or the parsed value. */
type ValueParser = (value: string | null) => { value: unknown } | { problem: string };

const PARSERS: Record<
  string,
  { field: keyof FunctionAnnotations | `allow:${keyof Permissions}`; parse: ValueParser }
> = {
  "namespace": { field: "namespace", parse: required(parseNamespace) },
  "require-role": { field: "requireRoles", parse: required(parseRoles) },
  "timeout": {
    field: "timeoutSeconds",
    parse: required(wholeNumber(1, MAX_TIMEOUT_SECONDS, "seconds")),
  },
  "max-retries": { field: "maxRetries", parse: required(wholeNumber(0, MAX_RETRIES, "retries")) },
  "schedule": { field: "schedule", parse: required(parseSchedule) },
  "schedule-params": { field: "scheduleParams", parse: required(parseJsonObject) },
  "description": { field: "description", parse: required((v) => ({ value: v })) },
  "progress-timeout": {
    field: "progressTimeoutSeconds",
    parse: required(wholeNumber(1, MAX_TIMEOUT_SECONDS, "seconds")),
  },
  "memory": { field: "memoryLimitMb", parse: required(wholeNumber(16, 1_000_000, "MB")) },
  "enabled": { field: "enabled", parse: parseBoolean },
  "allow-net": { field: "allow:net", parse: grantList(HOST_PATTERN, "a host or host:port") },
  "allow-env": { field: "allow:env", parse: grantList(ENV_NAME_PATTERN, "a variable name") },
  "allow-read": { field: "allow:read", parse: grantList(/^\S+$/, "a path") },
  "allow-write": { field: "allow:write", parse: grantList(/^\S+$/, "a path") },
  "allow-run": { field: "allow:run", parse: grantList(/^\S+$/, "a program") },
};

/** Lines that may carry an annotation: a `//` comment, or a line inside a block comment. */
function* commentLines(code: string): Generator<{ line: number; text: string }> {
  let inBlock = false;
  const lines = code.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i].trim();
    if (!inBlock && text.startsWith("//")) {
      yield { line: i + 1, text: text.replace(/^\/\/+/, "") };
      continue;
    }
    if (!inBlock && text.startsWith("/*")) {
      inBlock = true;
      text = text.replace(/^\/\*+/, "");
    }
    if (!inBlock) continue;
    const end = text.indexOf("*/");
    if (end >= 0) {
      inBlock = false;
      text = text.slice(0, end);
    }
    yield { line: i + 1, text: text.replace(/^\*+/, "") };
  }
}

const ANNOTATION = /^\s*@fluxbase:(\S*)(?:\s+(.*))?$/;

/** Reads every `@fluxbase:` annotation of `code`; `file` names the source in error messages. */
export function parseAnnotations(code: string, file: string): AnnotationResult {
  const annotations: FunctionAnnotations = { permissions: {} };
  const errors: string[] = [];
  const seen = new Map<string, number>();
  for (const { line, text } of commentLines(code)) {
    const match = ANNOTATION.exec(text);
    if (!match) continue;
    const [, name, rawValue] = match;
    const value = rawValue?.trim() || null;
    const where = `${file}:${line}: @fluxbase:${name}`;
    const spec = PARSERS[name];
    if (!spec) {
      errors.push(`${where} is not a known annotation; known: ${Object.keys(PARSERS).join(", ")}`);
      continue;
    }
    if (seen.has(name)) {
      errors.push(`${where} is given twice (first on line ${seen.get(name)})`);
      continue;
    }
    seen.set(name, line);
    const parsed = spec.parse(value);
    if ("problem" in parsed) {
      errors.push(
        value === null
          ? `${where} ${parsed.problem}`
          : `${where} ${JSON.stringify(value)} ${parsed.problem}`,
      );
      continue;
    }
    if (spec.field.startsWith("allow:")) {
      const kind = spec.field.slice("allow:".length) as keyof Permissions;
      annotations.permissions[kind] = parsed.value as true | string[];
    } else {
      (annotations as unknown as Record<string, unknown>)[spec.field] = parsed.value;
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, annotations };
}

function required(parse: (value: string) => { value: unknown } | { problem: string }): ValueParser {
  return (value) => value === null ? { problem: "needs a value" } : parse(value);
}

function wholeNumber(min: number, max: number, unit: string) {
  return (value: string) => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min) {
      const what = min > 0 ? "a positive whole number" : "a whole number";
      return { problem: `is not ${what} of ${unit}${min > 1 ? ` (at least ${min})` : ""}` };
    }
    if (n > max) return { problem: `is more than the maximum of ${max} ${unit}` };
    return { value: n };
  };
}

function parseNamespace(value: string) {
  return NAMESPACE_PATTERN.test(value)
    ? { value }
    : { problem: "is not a valid namespace (letters, digits, _ . -, up to 128 characters)" };
}

function parseRoles(value: string) {
  const roles = value.split(",").map((r) => r.trim());
  const bad = roles.find((r) => !ROLE_PATTERN.test(r));
  if (bad !== undefined) {
    return {
      problem: `has an invalid role ${JSON.stringify(bad)}; expected a comma list of role names`,
    };
  }
  return { value: [...new Set(roles)] };
}

function parseSchedule(value: string) {
  const fields = value.split(/\s+/);
  if (!CRON_NICKNAMES.has(value) && fields.length !== 5 && fields.length !== 6) {
    return { problem: "is not a cron expression; expected 5 fields, or 6 with seconds first" };
  }
  try {
    new Cron(value, { paused: true }).stop();
    return { value: fields.join(" ") };
  } catch (e) {
    return { problem: `is not a valid cron expression (${(e as Error).message})` };
  }
}

function parseJsonObject(value: string) {
  try {
    const parsed = JSON.parse(value);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return { value: parsed };
  } catch {
    // Reported below with the expected shape.
  }
  return { problem: "is not a JSON object" };
}

function parseBoolean(value: string | null) {
  if (value === null || value === "true") return { value: true };
  if (value === "false") return { value: false };
  return { problem: "is not true or false" };
}

/** Bare: grant everything; otherwise a comma list whose items must match `pattern`. */
function grantList(pattern: RegExp, what: string): ValueParser {
  return (value) => {
    if (value === null) return { value: true };
    const items = value.split(",").map((s) => s.trim());
    const bad = items.find((s) => !pattern.test(s));
    if (bad !== undefined) {
      return { problem: `has ${JSON.stringify(bad)}, which is not ${what}; expected a comma list` };
    }
    return { value: [...new Set(items)] };
  };
}

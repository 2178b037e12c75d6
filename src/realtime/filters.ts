/**
 * Subscription filters in PostgREST syntax, `column=op.value`, evaluated on an event's row.
 * Values are compared as the column's type (numbers as numbers, timestamps as instants), with
 * SQL's null semantics: a comparison with NULL is never true, only `is.null` matches it.
 */
import type { ColumnType, RealtimeTable } from "./tables.ts";

export type FilterOp = "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "in" | "is" | "like" | "ilike";

type Value = string | number | boolean;

export interface RowFilter {
  column: string;
  op: FilterOp;
  /** The filter as the client wrote it, echoed in the ack. */
  source: string;
  test(row: Record<string, unknown>): boolean;
}

export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FilterError";
  }
}

const OPS = new Set<FilterOp>(["eq", "neq", "gt", "gte", "lt", "lte", "in", "is", "like", "ilike"]);
const ORDERED = new Set<ColumnType>(["text", "uuid", "integer", "timestamptz"]);

/** Parses a filter for a table; throws FilterError naming what is wrong. */
export function parseFilter(source: string, table: RealtimeTable): RowFilter {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=([a-z]+)\.(.*)$/s.exec(source.trim());
  if (!match) {
    throw new FilterError(
      `Invalid filter "${source}": expected column=operator.value, e.g. "status=eq.running"`,
    );
  }
  const [, column, opText, raw] = match;
  const type = table.columns[column];
  if (!type) {
    throw new FilterError(
      `Invalid filter "${source}": ${table.schema}.${table.table} has no column "${column}"`,
    );
  }
  if (!OPS.has(opText as FilterOp)) {
    throw new FilterError(
      `Invalid filter "${source}": unknown operator "${opText}"; expected one of ${
        [...OPS].join(", ")
      }`,
    );
  }
  const op = opText as FilterOp;
  const fail = (why: string) => new FilterError(`Invalid filter "${source}": ${why}`);
  const test = build(op, type, raw, column, fail);
  return { column, op, source, test: (row) => test(row[column]) };
}

function build(
  op: FilterOp,
  type: ColumnType,
  raw: string,
  column: string,
  fail: (why: string) => FilterError,
): (cell: unknown) => boolean {
  if (op === "is") {
    const v = raw.toLowerCase();
    if (v === "null") return (cell) => cell === null || cell === undefined;
    if (v === "true" || v === "false") {
      if (type !== "boolean") {
        throw fail(`"is.${v}" needs a boolean column; "${column}" is ${type}`);
      }
      const want = v === "true";
      return (cell) => cell === want;
    }
    throw fail(`"is" takes null, true or false, not "${raw}"`);
  }
  if (type === "jsonb") throw fail(`column "${column}" is jsonb; only "is.null" applies to it`);
  if (op === "like" || op === "ilike") {
    if (type !== "text") throw fail(`"${op}" needs a text column; "${column}" is ${type}`);
    const re = likePattern(raw, op === "ilike");
    return (cell) => typeof cell === "string" && re.test(cell);
  }
  if (op === "in") {
    const items = parseList(raw, fail).map((item) => convert(item, type, fail));
    return (cell) => {
      const v = cellValue(cell, type);
      return v !== null && items.some((item) => item === v);
    };
  }
  if ((op === "gt" || op === "gte" || op === "lt" || op === "lte") && !ORDERED.has(type)) {
    throw fail(`"${op}" does not apply to ${type} column "${column}"`);
  }
  const want = convert(raw, type, fail);
  return (cell) => {
    const v = cellValue(cell, type);
    if (v === null) return false;
    switch (op) {
      case "eq":
        return v === want;
      case "neq":
        return v !== want;
      case "gt":
        return v > want;
      case "gte":
        return v >= want;
      case "lt":
        return v < want;
      case "lte":
        return v <= want;
    }
  };
}

/** A filter value as the column's type; timestamps become epoch microseconds. */
function convert(raw: string, type: ColumnType, fail: (why: string) => FilterError): Value {
  switch (type) {
    case "integer": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw fail(`"${raw}" is not a number`);
      return n;
    }
    case "timestamptz": {
      const t = parseTime(raw);
      if (t === null) throw fail(`"${raw}" is not a timestamp`);
      return t;
    }
    case "boolean":
      if (raw === "true" || raw === "false") return raw === "true";
      throw fail(`"${raw}" is not a boolean`);
    case "uuid":
      // uuid equality and order are those of the lower-case hex text.
      return raw.toLowerCase();
    default:
      return raw;
  }
}

function cellValue(cell: unknown, type: ColumnType): Value | null {
  if (cell === null || cell === undefined) return null;
  switch (type) {
    case "integer":
      return typeof cell === "number" ? cell : Number(cell);
    case "timestamptz":
      return typeof cell === "string" ? parseTime(cell) : null;
    case "boolean":
      return typeof cell === "boolean" ? cell : null;
    case "uuid":
      return String(cell).toLowerCase();
    default:
      return typeof cell === "string" ? cell : JSON.stringify(cell);
  }
}

/**
 * Parses an ISO timestamp to epoch microseconds. Postgres writes microseconds
 * ("2024-05-01T10:00:00.123456+00:00"); Date keeps only milliseconds, so the fraction is
 * read separately or two timestamps within one millisecond would compare equal.
 */
export function parseTime(text: string): number | null {
  const m = /^(.*?[T ]\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(.*)$/.exec(text.trim());
  const base = Date.parse(m ? `${m[1].replace(" ", "T")}${m[3] || "Z"}` : text);
  if (Number.isNaN(base)) {
    const whole = Date.parse(text);
    return Number.isNaN(whole) ? null : whole * 1000;
  }
  const micros = m?.[2] ? Number(m[2].slice(0, 6).padEnd(6, "0")) : 0;
  return base * 1000 + micros;
}

/** `(a,b,"c,d")` -> ["a", "b", "c,d"]. */
function parseList(raw: string, fail: (why: string) => FilterError): string[] {
  if (!raw.startsWith("(") || !raw.endsWith(")")) throw fail(`"in" takes a list like (a,b)`);
  const body = raw.slice(1, -1);
  const items: string[] = [];
  let i = 0;
  while (i <= body.length) {
    if (body[i] === '"') {
      let j = i + 1;
      let item = "";
      while (j < body.length && body[j] !== '"') {
        if (body[j] === "\\" && j + 1 < body.length) j++;
        item += body[j++];
      }
      if (j >= body.length) throw fail("unterminated quote in list");
      items.push(item);
      i = j + 1;
      if (i < body.length && body[i] !== ",") throw fail("expected , after a quoted value");
      i++;
    } else {
      const end = body.indexOf(",", i);
      const stop = end === -1 ? body.length : end;
      items.push(body.slice(i, stop).trim());
      i = stop + 1;
    }
  }
  if (items.length === 0 || (items.length === 1 && items[0] === "")) throw fail("empty list");
  return items;
}

/** SQL LIKE to a RegExp; `*` is accepted for `%` as PostgREST does (URLs mangle `%`). */
function likePattern(pattern: string, caseInsensitive: boolean): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) re += escape(pattern[++i]);
    else if (c === "%" || c === "*") re += "[\\s\\S]*";
    else if (c === "_") re += "[\\s\\S]";
    else re += escape(c);
  }
  return new RegExp(`^${re}$`, caseInsensitive ? "i" : "");
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\\/-]/g, "\\$&");
}

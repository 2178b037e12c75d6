/** Output for people (tables, key/value lists, a progress bar) and for scripts (`--json`). */

export interface Out {
  json: boolean;
  print(line: string): void;
  err(line: string): void;
  /** Writes without a newline (progress bar redraws). */
  write(text: string): void;
  isTerminal: boolean;
}

export function consoleOut(json: boolean): Out {
  const enc = new TextEncoder();
  return {
    json,
    print: (l) => console.log(l),
    err: (l) => console.error(l),
    write: (t) => void Deno.stdout.writeSync(enc.encode(t)),
    isTerminal: Deno.stdout.isTerminal(),
  };
}

/** Renders rows as an aligned text table; `columns` are [header, value getter]. */
export function table<T>(rows: T[], columns: Array<[string, (row: T) => unknown]>): string {
  const cells = rows.map((r) => columns.map(([, get]) => cellText(get(r))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns.map(([h]) => h)), ...cells.map(line)].join("\n");
}

/** A list: JSON with `--json`, else a table of `columns`, or `empty` when there are no rows. */
export function printRows<T>(
  out: Out,
  rows: T[],
  empty: string,
  columns: Array<[string, (row: T) => unknown]>,
): void {
  if (out.json) out.print(JSON.stringify(rows));
  else if (rows.length === 0) out.print(empty);
  else out.print(table(rows, columns));
}

/** Renders an object as `key: value` lines, nested values as compact JSON. */
export function keyValues(obj: Record<string, unknown>, keys?: string[]): string {
  const ks = keys ?? Object.keys(obj);
  const w = Math.max(...ks.map((k) => k.length));
  return ks.filter((k) => obj[k] !== undefined).map((k) =>
    `${(k + ":").padEnd(w + 1)} ${cellText(obj[k])}`
  )
    .join("\n");
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/** `[#########-----------]  45% message` */
export function progressBar(
  percent: number,
  message: string | null | undefined,
  width = 30,
): string {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  const filled = Math.round((p / 100) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(p).padStart(3)}%${
    message ? ` ${message}` : ""
  }`;
}

/** A small argv parser: positionals, `--flag value`, `--flag=value`, boolean `--flag`. */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

/** Flags that never take a value. */
const BOOLEAN = new Set([
  "json",
  "help",
  "wait",
  "follow",
  "delete-missing",
  "dry-run",
  "disabled",
  "no-color",
]);

export function parseArgs(argv: string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === "-h") {
      flags.set("help", true);
    } else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (eq >= 0) flags.set(name, a.slice(eq + 1));
      else if (BOOLEAN.has(name)) flags.set(name, true);
      else {
        const v = argv[i + 1];
        if (v === undefined || (v.startsWith("--") && v.length > 2)) {
          throw new UsageError(`Flag --${name} needs a value`);
        }
        flags.set(name, v);
        i++;
      }
    } else {
      positionals.push(a);
    }
  }
  return { positionals, flags };
}

/** Accessors that validate as they read, and reject flags a command does not know. */
export class Flags {
  readonly #flags: Map<string, string | true>;
  readonly #known = new Set<string>(["json", "help", "url", "key", "token", "no-color"]);

  constructor(flags: Map<string, string | true>) {
    this.#flags = flags;
  }

  string(name: string): string | undefined {
    this.#known.add(name);
    const v = this.#flags.get(name);
    if (v === true) throw new UsageError(`Flag --${name} needs a value`);
    return v;
  }

  bool(name: string): boolean {
    this.#known.add(name);
    const v = this.#flags.get(name);
    if (v === undefined) return false;
    if (v === true || v === "true") return true;
    if (v === "false") return false;
    throw new UsageError(`Flag --${name} is a switch, got "${v}"`);
  }

  int(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new UsageError(`Flag --${name} must be an integer, got "${v}"`);
    return Number(v);
  }

  /** Call after reading every flag: an unknown flag is a usage error, not silently ignored. */
  rejectUnknown(): void {
    for (const k of this.#flags.keys()) {
      if (!this.#known.has(k)) throw new UsageError(`Unknown flag --${k}`);
    }
  }
}

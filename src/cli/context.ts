/** What every command needs: the parsed flags, a client for the server, and the output. */
import { createClient, type FluxbaseClient, type FluxbaseError } from "../sdk/mod.ts";
import { Flags, UsageError } from "./args.ts";
import { type Out } from "./output.ts";

/** An error that ends the command with a one-line reason and an exit code. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

export interface Context {
  args: string[];
  flags: Flags;
  out: Out;
  env: (name: string) => string | undefined;
  /** A client from --url/FLUXBASE_URL and --token/--key/FLUXBASE_SERVICE_KEY/FLUXBASE_ANON_KEY. */
  client(): FluxbaseClient;
}

export const DEFAULT_URL = "http://localhost:8080";

export function makeClient(flags: Flags, env: (n: string) => string | undefined): FluxbaseClient {
  const url = flags.string("url") ?? env("FLUXBASE_URL") ?? DEFAULT_URL;
  if (!/^https?:\/\//.test(url)) {
    throw new UsageError(`Server URL must start with http:// or https://, got "${url}"`);
  }
  const token = flags.string("token") ?? env("FLUXBASE_TOKEN");
  const key = flags.string("key") ?? env("FLUXBASE_SERVICE_KEY");
  const anon = env("FLUXBASE_ANON_KEY");
  if (!token && !key && !anon) {
    throw new CliError(
      "No credentials: pass --key <service key> or --token <jwt>, or set FLUXBASE_SERVICE_KEY",
      2,
    );
  }
  return createClient(url, {
    serviceKey: token ? undefined : key,
    apiKey: token || key ? (token ? anon ?? key : undefined) : anon,
    accessToken: token,
  });
}

/** Returns `data`, or throws a CliError with the server's reason. */
export function unwrap<R extends { data: unknown; error: FluxbaseError | null }>(
  r: R,
  what: string,
): NonNullable<R["data"]> {
  if (r.error) {
    const e = r.error;
    const where = e.status ? `HTTP ${e.status} ${e.code}` : e.code;
    throw new CliError(`${what}: ${e.message} (${where})`);
  }
  return r.data as NonNullable<R["data"]>;
}

/** Exactly `n` positionals after the command words, named for the usage message. */
export function positionals(ctx: Context, names: string[], usage: string): string[] {
  if (ctx.args.length !== names.length) {
    throw new UsageError(
      ctx.args.length < names.length
        ? `Missing ${names.slice(ctx.args.length).map((n) => `<${n}>`).join(" ")}; usage: ${usage}`
        : `Unexpected argument "${ctx.args[names.length]}"; usage: ${usage}`,
    );
  }
  return ctx.args;
}

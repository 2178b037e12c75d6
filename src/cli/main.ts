/**
 * The `fluxbase` command: jobs, functions, workers and dev tokens against a Fluxbase server.
 * Exit codes: 0 success, 1 the operation failed (or the job did), 2 bad usage.
 */
import { Flags, parseArgs, UsageError } from "./args.ts";
import * as fns from "./commands/functions.ts";
import * as jobs from "./commands/jobs.ts";
import { token } from "./commands/token.ts";
import { CliError, type Context, makeClient } from "./context.ts";
import { consoleOut, type Out } from "./output.ts";

export const HELP = `fluxbase - manage background jobs on a Fluxbase server

Usage: fluxbase <command> [arguments] [flags]

Jobs:
  jobs submit <name> [--payload JSON | --file F] [--namespace NS] [--priority N]
                     [--at TIME] [--wait] [--timeout SECONDS]
  jobs list [--status S] [--namespace NS] [--limit N] [--offset N]
  jobs get <id>
  jobs cancel <id>
  jobs retry <id>
  jobs logs <id> [--follow]
  jobs watch <id>            live progress bar, then the result
  jobs stats [--namespace NS]

Functions and workers:
  functions list [--namespace NS]
  functions deploy <file> [--namespace NS] [--name N] [--disabled]
  functions sync [--dir ./jobs] [--namespace NS] [--delete-missing] [--dry-run]
  functions enable <name> [--namespace NS]
  functions disable <name> [--namespace NS]
  workers list

Development:
  token --sub <id> [--role R] [--email E] [--expires 1h]
        signs with FLUXBASE_AUTH_JWT_SECRET or .fluxbase/jwt_secret

Global flags:
  --url URL      server (env FLUXBASE_URL, default http://localhost:8080)
  --key KEY      service key (env FLUXBASE_SERVICE_KEY)
  --token JWT    act as a user (env FLUXBASE_TOKEN)
  --json         machine-readable output
  -h, --help     this help
`;

type Command = (ctx: Context) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  "jobs submit": jobs.submit,
  "jobs list": jobs.list,
  "jobs get": jobs.get,
  "jobs cancel": jobs.cancel,
  "jobs retry": jobs.retry,
  "jobs logs": jobs.logs,
  "jobs watch": jobs.watch,
  "jobs stats": jobs.stats,
  "functions list": fns.list,
  "functions deploy": fns.deploy,
  "functions sync": fns.sync,
  "functions enable": (ctx) => fns.setEnabled(ctx, true),
  "functions disable": (ctx) => fns.setEnabled(ctx, false),
  "workers list": fns.workers,
  "token": token,
};

export interface RunOptions {
  env?: (name: string) => string | undefined;
  out?: Out;
}

/** Runs one command line and returns the exit code; never exits the process itself. */
export async function run(argv: string[], opts: RunOptions = {}): Promise<number> {
  const env = opts.env ?? ((n: string) => Deno.env.get(n));
  let out = opts.out ?? consoleOut(argv.includes("--json"));
  try {
    const parsed = parseArgs(argv);
    const flags = new Flags(parsed.flags);
    out = opts.out ?? consoleOut(flags.bool("json"));
    const words = parsed.positionals;
    if (words.length === 0 || (flags.bool("help") && !COMMANDS[words.slice(0, 2).join(" ")])) {
      out.print(HELP);
      return words.length === 0 && !flags.bool("help") ? 2 : 0;
    }
    const key = COMMANDS[words[0]] ? words[0] : words.slice(0, 2).join(" ");
    const cmd = COMMANDS[key];
    if (!cmd) {
      throw new UsageError(
        `Unknown command "${words.slice(0, 2).join(" ")}"; run "fluxbase --help"`,
      );
    }
    if (flags.bool("help")) {
      out.print(HELP);
      return 0;
    }
    const args = words.slice(key.split(" ").length);
    let client: ReturnType<typeof makeClient> | undefined;
    const ctx: Context = {
      args,
      flags,
      out,
      env,
      client: () => (client ??= makeClient(flags, env)),
    };
    return await cmd(ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      out.err(`Error: ${e.message}`);
      return 2;
    }
    if (e instanceof CliError) {
      out.err(`Error: ${e.message}`);
      return e.exitCode;
    }
    out.err(`Error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}

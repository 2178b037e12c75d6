/**
 * Runs inside the isolate, before any job code: takes away the channels between isolates,
 * routes console and Deno.env to the current run, and turns Deno.exit into a reported failure.
 */
import { isBlockedEnvName } from "./env.ts";
import type { IsolateMessage } from "./protocol.ts";
import type { LogLevel } from "./types.ts";

/** The run the isolate is executing now; set by entry.ts for the length of one job. */
export interface CurrentRun {
  runId: number;
  /** The job's own view of the environment (mutable by the job, for that job only). */
  env: Record<string, string>;
  cancelled(): boolean;
}

export interface Sandbox {
  setCurrent(run: CurrentRun | null): void;
  current(): CurrentRun | null;
}

/** Longest log line kept; longer ones are cut with a marker (a job can log megabytes per call). */
export const MAX_LOG_LINE_CHARS = 8192;

export function installSandbox(post: (message: IsolateMessage) => void): Sandbox {
  let current: CurrentRun | null = null;
  removeCrossIsolateChannels();
  routeConsole(post, () => current?.runId ?? null);
  routeEnv(() => current);
  reportExit(post, () => current?.runId ?? null);
  return { setCurrent: (run) => (current = run), current: () => current };
}

/**
 * Isolates of one process share these even with no permissions: two permissionless workers
 * exchanged data over BroadcastChannel (DESIGN.md); navigator.locks and the Cache API are
 * process-wide stores too. Jobs have no use for them.
 */
function removeCrossIsolateChannels() {
  const g = globalThis as Record<string, unknown>;
  for (const name of ["BroadcastChannel", "caches", "localStorage", "sessionStorage"]) {
    delete g[name];
  }
  try {
    Object.defineProperty(navigator, "locks", { value: undefined, configurable: false });
  } catch {
    // Not present in this Deno version: nothing to remove.
  }
}

function routeConsole(post: (message: IsolateMessage) => void, runId: () => number | null) {
  const levels: Array<[keyof Console, LogLevel]> = [
    ["log", "info"],
    ["info", "info"],
    ["debug", "debug"],
    ["trace", "debug"],
    ["dir", "info"],
    ["warn", "warn"],
    ["error", "error"],
  ];
  for (const [method, level] of levels) {
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      post({ type: "log", runId: runId(), level, message: formatLogLine(args), at: Date.now() });
    };
  }
}

export function formatLogLine(args: unknown[]): string {
  const text = args.map((a) =>
    typeof a === "string" ? a : Deno.inspect(a, { depth: 4, colors: false, breakLength: Infinity })
  ).join(" ");
  if (text.length <= MAX_LOG_LINE_CHARS) return text;
  return `${text.slice(0, MAX_LOG_LINE_CHARS)}... [${
    text.length - MAX_LOG_LINE_CHARS
  } more characters]`;
}

/**
 * Without an env grant, Deno.env shows the run's view only (values of other jobs never live
 * here: each run brings its own). With a grant, real variables show too, minus the server's
 * secrets, which a job never gets. Writes change the run's view, never the process environment,
 * which every isolate of the process shares.
 */
function routeEnv(current: () => CurrentRun | null) {
  const real = Deno.env;
  const realGet = real.get.bind(real);
  const realToObject = real.toObject.bind(real);
  const granted = (name?: string) =>
    Deno.permissions.querySync(
      name === undefined ? { name: "env" } : { name: "env", variable: name },
    )
      .state === "granted";
  const view = () => {
    const run = current();
    if (!run) return {};
    return { ...run.env, FLUXBASE_JOB_CANCELLED: run.cancelled() ? "true" : "false" };
  };
  const get = (name: string): string | undefined => {
    const own = view() as Record<string, string>;
    if (Object.hasOwn(own, name)) return own[name];
    if (isBlockedEnvName(name) || !granted(name)) return undefined;
    return realGet(name);
  };
  const env = {
    get,
    has: (name: string) => get(name) !== undefined,
    set(name: string, value: string) {
      const run = current();
      if (run) run.env[name] = String(value);
    },
    delete(name: string) {
      const run = current();
      if (run) delete run.env[name];
    },
    toObject(): Record<string, string> {
      const visible: Record<string, string> = {};
      if (granted()) {
        for (const [name, value] of Object.entries(realToObject())) {
          if (!isBlockedEnvName(name)) visible[name] = value;
        }
      }
      return { ...visible, ...view() };
    },
  };
  Object.defineProperty(Deno, "env", { value: env, configurable: false, writable: false });
}

/**
 * Deno.exit() in a Worker silently stops that isolate (measured on 2.9.6: no error event, no
 * message, pings unanswered) without exiting the process. Report it first, so the host can
 * tell "the job exited" from "the isolate hangs".
 */
function reportExit(post: (message: IsolateMessage) => void, runId: () => number | null) {
  const realExit = Deno.exit.bind(Deno);
  const exit = (code?: number): never => {
    post({ type: "exit", runId: runId(), code: code ?? 0 });
    return realExit(code);
  };
  Object.defineProperty(Deno, "exit", { value: exit, configurable: false, writable: false });
}

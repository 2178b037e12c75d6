/**
 * The runtime inside a job isolate. The generated main module (materialize.ts) imports this file
 * first, so the sandbox is in place before the job's module is evaluated, then calls `start()`
 * with the job's module. Runs arrive in batches and wait in a queue; one job runs at a time, and
 * everything about a job arrives with it and is dropped when its run ends.
 *
 * Outcomes go into the control block (control.ts). The host hears of them through an
 * "outcomes" message: at once when the queue is empty, else after the current macrotask, so a
 * batch of quick jobs costs few messages while a slow job (one that waits for I/O) does not hold
 * back the outcomes of the jobs before it; and after every `WAKE_EVERY` runs, so the host records
 * finished jobs and sends the next ones while this isolate runs the rest of a long batch.
 */
/// <reference lib="deno.worker" />
import { createClient } from "../sdk/mod.ts";
import { ControlBlock, SlotState } from "./control.ts";
import type { ErrorInfo, HostMessage, IsolateMessage, QueuedRun } from "./protocol.ts";
import { installSandbox } from "./sandbox.ts";
import { createJobUtils } from "./job_utils.ts";
import type { PlatformRequest, PlatformResponse } from "./types.ts";

type Handler = (req: Request, fluxbase: unknown, fluxbaseService: unknown, job: unknown) => unknown;

const post = (message: IsolateMessage) => self.postMessage(message);
const sandbox = installSandbox(post);
const pendingPlatform = new Map<
  number,
  { resolve(r: PlatformResponse): void; reject(e: Error): void }
>();
let nextRequestId = 1;
let handler: Handler | null = null;
let control: ControlBlock | null = null;
const queue: QueuedRun[] = [];
let draining = false;
let wakeTimer: ReturnType<typeof setTimeout> | null = null;

// An unhandled rejection or an error thrown from a timer would otherwise kill the isolate with
// only an error event on the host (measured); report it against the run that is current.
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  post({
    type: "fatal",
    runId: sandbox.current()?.runId ?? null,
    what: "unhandled rejection",
    error: errorInfo(event.reason),
  });
});
self.addEventListener("error", (event) => {
  event.preventDefault();
  post({
    type: "fatal",
    runId: sandbox.current()?.runId ?? null,
    what: "uncaught error",
    error: errorInfo(event.error ?? event.message),
  });
});

self.onmessage = (event: MessageEvent<HostMessage>) => {
  const message = event.data;
  switch (message.type) {
    case "ping":
      post({ type: "pong", id: message.id });
      break;
    case "init":
      control = new ControlBlock(message.control);
      break;
    case "runs":
      queue.push(...JSON.parse(message.json) as QueuedRun[]);
      if (!draining) void drain();
      break;
    case "platform_response":
      pendingPlatform.get(message.requestId)?.resolve(message.response);
      pendingPlatform.delete(message.requestId);
      break;
    case "platform_error":
      pendingPlatform.get(message.requestId)?.reject(new Error(message.error));
      pendingPlatform.delete(message.requestId);
      break;
  }
};

// Module evaluation order puts this line after the whole graph has loaded and before the job's
// module is evaluated: from here on, an isolate that does not answer a ping runs job code.
post({ type: "booted" });

/** Called by the generated main module once the job's module has been evaluated. */
export function start(module: Record<string, unknown>): void {
  const candidate = typeof module.handler === "function" ? module.handler : module.default;
  if (typeof candidate !== "function") {
    post({
      type: "load_error",
      error: {
        message: "The module exports no handler function (export `handler` or a default function)",
        stack: null,
      },
    });
    return;
  }
  handler = candidate as Handler;
  post({ type: "ready" });
}

/** Runs the queued jobs one after another; a run the host took back (SKIPPED) is passed over. */
async function drain() {
  draining = true;
  const block = control!;
  while (queue.length > 0) {
    const run = queue.shift()!;
    if (block.runId(run.slot) !== run.runId) continue;
    if (!block.transition(run.slot, SlotState.QUEUED, SlotState.RUNNING)) continue;
    try {
      await runJob(run, block);
    } catch (e) {
      // runJob reports the handler's own errors; this is the runtime failing (it must not stop
      // the queue: the runs behind this one would wait for their timeouts).
      report(block, run, true, JSON.stringify(errorInfo(e)), 0);
    }
    if (queue.length === 0 || ++sinceWake >= WAKE_EVERY) wake();
    else wakeTimer ??= setTimeout(wake, 0);
  }
  draining = false;
}

/**
 * Runs between "outcomes" messages within one batch. One message per batch of up to 64 left the
 * host idle while the isolate ran the batch and the isolate idle while the host refilled it;
 * with 16: 55,000-62,000 instead of 48,000-57,000 no-op runs/s (bench/pool.ts), and the jobs
 * benchmark's third round faster in 5 of 5 paired runs (11,700-15,300 jobs/s, 10,000-14,000).
 */
const WAKE_EVERY = 16;
let sinceWake = 0;
/** Runs finished so far (an int32 that wraps), sent with each "outcomes" message. */
let finished = 0;

function wake() {
  sinceWake = 0;
  if (wakeTimer !== null) clearTimeout(wakeTimer);
  wakeTimer = null;
  post({ type: "outcomes", finished });
}

async function runJob({ runId, slot, job }: QueuedRun, block: ControlBlock) {
  const cancelled = () => block.cancelled(slot);
  // The run's env object came with this run alone (parsed from its batch): the job may change
  // it without a copy.
  sandbox.setCurrent({ runId, env: job.env, cancelled });
  const started = performance.now();
  let failed = false;
  let json: string;
  try {
    const baseUrl = job.env.FLUXBASE_URL ?? "http://fluxbase.internal";
    // Built on first use: a Request and two clients cost more than a quick job itself
    // (measured: 18,000 no-op runs/s with them built for every run, 45,000 without).
    const req = lazy(() =>
      new Request(
        `${baseUrl.replace(/\/+$/, "")}/api/v1/jobs/run/${encodeURIComponent(job.jobName)}`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(job.payload ?? null),
        },
      )
    );
    // The clients carry no credentials: the host attaches the user's or the service role's.
    const fluxbase = lazy(() =>
      createClient(baseUrl, { fetch: platformFetch(runId, "user", baseUrl) })
    );
    const fluxbaseService = lazy(() =>
      createClient(baseUrl, { fetch: platformFetch(runId, "service", baseUrl) })
    );
    const utils = createJobUtils(job, cancelled, (p) => post({ type: "progress", runId, ...p }));
    const value = await handler!(req, fluxbase, fluxbaseService, utils);
    json = value === undefined ? "null" : resultJson(value);
  } catch (e) {
    failed = true;
    json = JSON.stringify(errorInfo(e));
  } finally {
    if (sandbox.current()?.runId === runId) sandbox.setCurrent(null);
  }
  report(block, { runId, slot }, failed, json, performance.now() - started);
}

/** A finished run's outcome: into its slot, or as a message when it does not fit there. */
function report(
  block: ControlBlock,
  { runId, slot }: { runId: number; slot: number },
  failed: boolean,
  json: string,
  elapsedMs: number,
) {
  finished = (finished + 1) | 0;
  if (block.finish(slot, failed, json, elapsedMs, finished)) return;
  // POSTED before the message: once the host has the message it may reuse the slot.
  block.setState(slot, SlotState.POSTED);
  post({ type: "outcome", runId, failed, json });
}

/**
 * An object built on first touch. Methods come bound to the real object, so private fields and
 * internal slots work (`req.json()`, `fluxbase.jobs.submit()`, `req instanceof Request`); only
 * APIs that check the object's own brand (`fetch(req)`, `new Request(req)`) see the wrapper:
 * pass `req.url` and `req.body` there instead.
 */
function lazy<T extends object>(build: () => T): T {
  return new Proxy(new Lazy(build), LAZY_TRAPS) as unknown as T;
}

/** The proxy target: no own properties (private fields only), so the traps may report any. */
class Lazy {
  #build: () => object;
  #real: object | null = null;

  constructor(build: () => object) {
    this.#build = build;
  }

  get real(): object {
    return this.#real ??= this.#build();
  }
}

/** One set of traps for every lazy object (a run makes three; no closures per run). */
const LAZY_TRAPS: ProxyHandler<Lazy> = {
  get(lazy, key) {
    const object = lazy.real;
    const value = Reflect.get(object, key, object);
    return typeof value === "function" ? value.bind(object) : value;
  },
  set: (lazy, key, value) => Reflect.set(lazy.real, key, value),
  has: (lazy, key) => Reflect.has(lazy.real, key),
  ownKeys: (lazy) => Reflect.ownKeys(lazy.real),
  getOwnPropertyDescriptor(lazy, key) {
    const descriptor = Reflect.getOwnPropertyDescriptor(lazy.real, key);
    // A proxy may not report a property as non-configurable that its target lacks.
    if (descriptor) descriptor.configurable = true;
    return descriptor;
  },
  getPrototypeOf: (lazy) => Reflect.getPrototypeOf(lazy.real),
};

function resultJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new TypeError(
      `The handler's return value is not JSON-serializable: ${(e as Error).message}`,
    );
  }
  if (json === undefined) {
    throw new TypeError(
      `The handler's return value is not JSON-serializable: a ${typeof value} has no JSON form`,
    );
  }
  return json;
}

/** A `fetch` for the SDK that hands each request to the host instead of the network. */
function platformFetch(runId: number, client: "user" | "service", baseUrl: string) {
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const base = new URL(baseUrl);
    if (url.origin !== base.origin) {
      throw new TypeError(`The Fluxbase client can only call ${base.origin}, not ${url.origin}`);
    }
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => (headers[name] = value));
    const body: PlatformRequest["body"] = request.body ? await request.text() : null;
    const requestId = nextRequestId++;
    const response = await new Promise<PlatformResponse>((resolve, reject) => {
      pendingPlatform.set(requestId, { resolve, reject });
      post({
        type: "platform_request",
        runId,
        requestId,
        request: { client, method: request.method, path: url.pathname + url.search, headers, body },
      });
    });
    const nullBody = [101, 204, 205, 304].includes(response.status);
    return new Response(nullBody ? null : response.body, {
      status: response.status,
      headers: response.headers,
    });
  };
}

function errorInfo(value: unknown): ErrorInfo {
  if (value instanceof Error) {
    return { message: value.message || value.name, stack: value.stack ?? null };
  }
  if (typeof value === "string") return { message: value, stack: null };
  try {
    return { message: JSON.stringify(value) ?? String(value), stack: null };
  } catch {
    return { message: String(value), stack: null };
  }
}

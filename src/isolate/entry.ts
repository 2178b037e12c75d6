/**
 * The runtime inside a job isolate. The generated main module (materialize.ts) imports this file
 * first, so the sandbox is in place before the job's module is evaluated, then calls `start()`
 * with the job's module. One job runs at a time; everything about a job arrives with its "run"
 * message and is dropped when the run ends.
 */
/// <reference lib="deno.worker" />
import { createClient } from "../sdk/mod.ts";
import type { ErrorInfo, HostMessage, IsolateMessage } from "./protocol.ts";
import { installSandbox } from "./sandbox.ts";
import { createJobUtils } from "./job_utils.ts";
import type { JobRun, PlatformRequest, PlatformResponse } from "./types.ts";

type Handler = (req: Request, fluxbase: unknown, fluxbaseService: unknown, job: unknown) => unknown;

const post = (message: IsolateMessage) => self.postMessage(message);
const sandbox = installSandbox(post);
const pendingPlatform = new Map<
  number,
  { resolve(r: PlatformResponse): void; reject(e: Error): void }
>();
let nextRequestId = 1;
let handler: Handler | null = null;

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
    case "run":
      void runJob(message.runId, message.job, new Int32Array(message.cancelFlag));
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

async function runJob(runId: number, job: JobRun, cancelFlag: Int32Array) {
  const cancelled = () => Atomics.load(cancelFlag, 0) === 1;
  sandbox.setCurrent({ runId, env: { ...job.env }, cancelled });
  try {
    const baseUrl = job.env.FLUXBASE_URL ?? "http://fluxbase.internal";
    const req = new Request(
      `${baseUrl.replace(/\/+$/, "")}/api/v1/jobs/run/${encodeURIComponent(job.jobName)}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(job.payload ?? null),
      },
    );
    // The clients carry no credentials: the host attaches the user's or the service role's.
    const fluxbase = createClient(baseUrl, { fetch: platformFetch(runId, "user", baseUrl) });
    const fluxbaseService = createClient(baseUrl, {
      fetch: platformFetch(runId, "service", baseUrl),
    });
    const utils = createJobUtils(job, cancelled, (p) => post({ type: "progress", runId, ...p }));
    const value = await handler!(req, fluxbase, fluxbaseService, utils);
    let result: unknown;
    try {
      result = value === undefined ? null : JSON.parse(JSON.stringify(value));
    } catch (e) {
      throw new TypeError(
        `The handler's return value is not JSON-serializable: ${(e as Error).message}`,
      );
    }
    post({ type: "completed", runId, result });
  } catch (e) {
    post({ type: "failed", runId, error: errorInfo(e) });
  } finally {
    if (sandbox.current()?.runId === runId) sandbox.setCurrent(null);
  }
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

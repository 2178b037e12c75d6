/**
 * The host side of one isolate: creates the permissioned Worker, routes its messages to the run
 * that owns it, answers "is it alive?" and stops it.
 */
import type { ErrorInfo, HostMessage, IsolateMessage } from "./protocol.ts";
import type { Permissions } from "./types.ts";

export type IsolateEvent = IsolateMessage | { type: "crashed"; error: ErrorInfo };

/**
 * Worker permissions from a bundle's grants. Every kind is spelled out: a Worker created without
 * a `permissions` option inherits all of its parent's (DESIGN.md), and one with a partial object
 * inherits the kinds left out.
 */
export function workerPermissions(p: Permissions): Deno.PermissionOptionsObject {
  return {
    net: p.net ?? false,
    env: p.env ?? false,
    read: p.read ?? false,
    write: p.write ?? false,
    run: p.run ?? false,
    ffi: false,
    sys: false,
    import: false,
  };
}

let nextPingId = 1;

export class IsolateHost {
  readonly key: string;
  readonly createdAt = performance.now();
  /** Resolves with null once the handler is loaded, or with the reason it could not be. */
  readonly ready: Promise<ErrorInfo | null>;
  /** True once the isolate ended by itself (Deno.exit, crash): there is nothing to stop. */
  exited = false;
  /** True once its module graph has loaded; before that no JavaScript of the job can be running. */
  booted = false;
  #worker: Worker;
  #listener: ((event: IsolateEvent) => void) | null = null;
  #pongs = new Map<number, () => void>();
  #resolveReady!: (value: ErrorInfo | null) => void;
  #stopped = false;

  constructor(
    key: string,
    mainUrl: URL,
    name: string,
    permissions: Permissions,
    /** Maps temp-file locations in errors and logs back to the function's files. */
    readonly rewriteTrace: (text: string) => string = (text) => text,
  ) {
    this.key = key;
    this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.#worker = new Worker(mainUrl, {
      type: "module",
      name,
      deno: { permissions: workerPermissions(permissions) },
    });
    this.#worker.onmessage = (event: MessageEvent<IsolateMessage>) => this.#receive(event.data);
    this.#worker.onmessageerror = () => {
      this.#emit({
        type: "crashed",
        error: { message: "A message from the isolate could not be deserialized", stack: null },
      });
    };
    // Module load errors (syntax, a missing import, a throw at top level) and anything that
    // escaped the entry's own listeners arrive here; the Worker is gone afterwards (measured).
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.exited = true;
      const error = { message: event.message, stack: null };
      this.#resolveReady(error);
      this.#emit({ type: "crashed", error });
    };
  }

  /** Routes the isolate's messages to `listener` (the run that owns the isolate now). */
  attach(listener: ((event: IsolateEvent) => void) | null): void {
    this.#listener = listener;
  }

  post(message: HostMessage): void {
    if (!this.#stopped) this.#worker.postMessage(message);
  }

  /** True when the isolate's event loop answered within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean> {
    if (this.exited || this.#stopped) return Promise.resolve(false);
    const id = nextPingId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pongs.delete(id);
        resolve(false);
      }, timeoutMs);
      this.#pongs.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.post({ type: "ping", id });
    });
  }

  /**
   * Terminates the Worker. `worker.terminate()` does not stop a synchronous loop or a microtask
   * loop in Deno 2.9 (the thread keeps a core busy: measured 100% of a core for a `while(true)`
   * after terminate), so first ask whether the event loop still answers. Returns `stuck: true`
   * when it did not: the thread may run on, and only ending the process frees it.
   */
  async stop(pingTimeoutMs: number | null): Promise<{ stuck: boolean }> {
    if (this.#stopped) return { stuck: false };
    // Still loading its modules (compiling, fetching npm packages) is not being stuck:
    // terminate() stops a Worker that has not begun to evaluate code.
    const check = !this.exited && this.booted && pingTimeoutMs !== null;
    const stuck = check ? !(await this.ping(pingTimeoutMs)) : false;
    this.#stopped = true;
    this.#listener = null;
    this.#worker.terminate();
    return { stuck };
  }

  #receive(message: IsolateMessage) {
    switch (message.type) {
      case "booted":
        this.booted = true;
        return;
      case "ready":
        this.#resolveReady(null);
        return;
      case "load_error":
        this.#resolveReady(message.error);
        return;
      case "pong":
        this.#pongs.get(message.id)?.();
        this.#pongs.delete(message.id);
        return;
      case "fatal":
        // Before "ready", this is the job's module throwing while it is evaluated: the module
        // graph's evaluation promise rejects, which the entry's unhandledrejection listener sees.
        this.#resolveReady(message.error);
        break;
      case "exit":
        this.exited = true;
        this.#resolveReady({
          message: `The module called Deno.exit(${message.code})`,
          stack: null,
        });
        break;
    }
    this.#emit(message);
  }

  #emit(event: IsolateEvent) {
    this.#listener?.(event);
  }
}

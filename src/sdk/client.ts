/** `createClient()` and the client object that ties HTTP, jobs, admin and realtime together. */
import { AdminJobsClient } from "./admin.ts";
import { HttpClient } from "./http.ts";
import { JobsClient, type JobWatcher } from "./jobs.ts";
import { RealtimeClient, type RealtimeOptions, type WebSocketConstructor } from "./realtime.ts";
import type { FetchLike, Job } from "./types.ts";

/** Options of `createClient()`. Give one of `apiKey`, `serviceKey` or `accessToken`. */
export interface ClientOptions {
  /** The anon key (a JWT); sent as `apikey` and, without a session, as the bearer token. */
  apiKey?: string;
  /** The service key: full access, bypasses row-level security. Keep it on servers. */
  serviceKey?: string;
  /** A signed-in user's JWT; same as calling `auth.setSession(token)`. */
  accessToken?: string;
  /** Used for every HTTP call (default: global `fetch`). */
  fetch?: FetchLike;
  /**
   * WebSocket constructor for realtime (default: global `WebSocket`). Node 20 has none
   * without a flag: `import { WebSocket } from "ws"` and pass it here.
   */
  WebSocket?: WebSocketConstructor;
  /** Extra headers sent with every HTTP call. */
  headers?: Record<string, string>;
  /** Realtime connection tuning. */
  realtime?: RealtimeOptions;
}

/** `client.auth`: which identity the client acts as. */
export class AuthClient {
  readonly #http: HttpClient;
  readonly #realtime: () => RealtimeClient | null;

  constructor(http: HttpClient, realtime: () => RealtimeClient | null) {
    this.#http = http;
    this.#realtime = realtime;
  }

  /**
   * Acts as the user of `token` from now on (HTTP and the open realtime socket).
   *
   * @example
   * ```ts
   * client.auth.setSession(userJwt);
   * const { data: mine } = await client.jobs.list();
   * ```
   */
  setSession(token: string): void {
    if (typeof token !== "string" || token.length === 0) {
      throw new TypeError("setSession() needs a non-empty token string");
    }
    this.#http.credentials.accessToken = token;
    this.#realtime()?.setAuth(token);
  }

  /**
   * Drops the session; calls fall back to the service or API key.
   *
   * @example
   * ```ts
   * client.auth.clearSession();
   * ```
   */
  clearSession(): void {
    delete this.#http.credentials.accessToken;
    const t = this.#http.bearerToken();
    if (t) this.#realtime()?.setAuth(t);
  }

  /**
   * The token calls are currently sent with, if any.
   *
   * @example
   * ```ts
   * const token = client.auth.getToken();
   * ```
   */
  getToken(): string | undefined {
    return this.#http.bearerToken();
  }
}

/** A Fluxbase client: `jobs`, `admin.jobs`, `realtime`, `auth`. */
export class FluxbaseClient {
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  /** Submit and follow your own jobs. */
  readonly jobs: JobsClient;
  /** Admin operations (admin, dashboard_admin or service role). */
  readonly admin: { jobs: AdminJobsClient };
  /** Identity of the client. */
  readonly auth: AuthClient;
  readonly #http: HttpClient;
  readonly #opts: ClientOptions;
  #realtime: RealtimeClient | null = null;

  constructor(url: string, opts: ClientOptions = {}) {
    if (typeof url !== "string" || !/^https?:\/\//.test(url)) {
      throw new TypeError(`createClient() needs an http(s) URL, got "${String(url)}"`);
    }
    this.#opts = opts;
    this.#http = new HttpClient({
      url,
      credentials: {
        apiKey: opts.apiKey,
        serviceKey: opts.serviceKey,
        accessToken: opts.accessToken,
      },
      fetch: opts.fetch,
      headers: opts.headers,
    });
    this.url = this.#http.baseUrl;
    const watch: JobWatcher = (jobId, onJob) => {
      const rt = this.realtime;
      if (!rt.available) return null;
      let resolveReady!: (ok: boolean) => void;
      const ready = new Promise<boolean>((r) => (resolveReady = r));
      const ch = rt.channel(`job:${jobId}`).on("postgres_changes", {
        event: "UPDATE",
        schema: "jobs",
        table: "queue",
        filter: `id=eq.${jobId}`,
      }, (p) => onJob(p.new as Job)).subscribe((status) => {
        if (status === "SUBSCRIBED") resolveReady(true);
        else if (status !== "CLOSED") resolveReady(false);
        else resolveReady(false);
      });
      return { ready, stop: () => void ch.unsubscribe() };
    };
    this.jobs = new JobsClient(this.#http, watch);
    this.admin = { jobs: new AdminJobsClient(this.#http) };
    this.auth = new AuthClient(this.#http, () => this.#realtime);
  }

  /**
   * Realtime change feed and live logs. Created on first access; the WebSocket opens only
   * when a channel subscribes, so clients that never use realtime never open a socket.
   *
   * @example
   * ```ts
   * client.realtime.channel("table:jobs.queue")
   *   .on("UPDATE", (payload) => console.log(payload.new.status))
   *   .subscribe((status) => console.log(status)); // "SUBSCRIBED"
   * ```
   */
  get realtime(): RealtimeClient {
    this.#realtime ??= new RealtimeClient({
      url: this.url,
      token: () => this.#http.bearerToken(),
      WebSocket: this.#opts.WebSocket,
      options: this.#opts.realtime,
      fetchLogs: async (jobId, afterLine) => (await this.jobs.getLogs(jobId, afterLine)).data,
    });
    return this.#realtime;
  }
}

/**
 * Creates a client for a Fluxbase server.
 *
 * @example
 * ```ts
 * import { createClient } from "@fluxbase/sdk";
 *
 * const client = createClient("http://localhost:8080", { apiKey: "your-anon-key" });
 * const { data: job, error } = await client.jobs.submit("process-data", { items: [1, 2, 3] });
 * ```
 */
export function createClient(url: string, options: ClientOptions = {}): FluxbaseClient {
  return new FluxbaseClient(url, options);
}

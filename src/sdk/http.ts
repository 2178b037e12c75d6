/**
 * The one place the SDK talks HTTP: builds headers from the current credentials, calls
 * the configured `fetch`, and turns every outcome into `{ data, error }`.
 */
import { type FetchLike, FluxbaseError, type FluxbaseResponse } from "./types.ts";

/** Credentials of a client; `accessToken` changes with `auth.setSession()`. */
export interface Credentials {
  apiKey?: string;
  serviceKey?: string;
  accessToken?: string;
}

export type QueryValue = string | number | boolean | null | undefined;

export interface HttpOptions {
  url: string;
  credentials: Credentials;
  fetch?: FetchLike;
  headers?: Record<string, string>;
}

export class HttpClient {
  readonly baseUrl: string;
  readonly credentials: Credentials;
  readonly #fetch: FetchLike;
  readonly #headers: Record<string, string>;

  constructor(opts: HttpOptions) {
    this.baseUrl = opts.url.replace(/\/+$/, "");
    this.credentials = opts.credentials;
    // Wrapped so a browser's fetch is never called with a foreign `this` ("Illegal invocation").
    const f = opts.fetch;
    this.#fetch = f ?? ((input, init) => globalThis.fetch(input, init));
    this.#headers = opts.headers ?? {};
  }

  /** The token sent as `Authorization: Bearer`: session, then service key, then API key. */
  bearerToken(): string | undefined {
    const c = this.credentials;
    return c.accessToken ?? c.serviceKey ?? c.apiKey;
  }

  headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { ...this.#headers, accept: "application/json" };
    const key = this.credentials.serviceKey ?? this.credentials.apiKey;
    if (key) h.apikey = key;
    const token = this.bearerToken();
    if (token) h.authorization = `Bearer ${token}`;
    if (json) h["content-type"] = "application/json";
    return h;
  }

  /** Calls `method path` and parses the JSON answer; never throws. */
  async request<T>(
    method: string,
    path: string,
    opts: { body?: unknown; query?: Record<string, QueryValue>; signal?: AbortSignal } = {},
  ): Promise<FluxbaseResponse<T>> {
    const url = this.baseUrl + path + queryString(opts.query);
    const hasBody = opts.body !== undefined;
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers: this.headers(hasBody),
        body: hasBody ? JSON.stringify(opts.body) : undefined,
        signal: opts.signal,
      });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const aborted = err instanceof Error &&
        (err.name === "AbortError" || err.name === "TimeoutError");
      return {
        data: null,
        error: new FluxbaseError(
          aborted ? `Request ${method} ${path} was aborted: ${msg}` : `Cannot reach ${url}: ${msg}`,
          0,
          aborted ? "aborted" : "network_error",
        ),
      };
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      return {
        data: null,
        error: new FluxbaseError(
          `Response of ${method} ${path} broke off: ${msg}`,
          res.status,
          "network_error",
        ),
      };
    }
    let body: unknown = null;
    let parsed = true;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        parsed = false;
      }
    }
    if (!res.ok) return { data: null, error: errorFrom(res, body, parsed ? null : text) };
    if (!parsed) {
      return {
        data: null,
        error: new FluxbaseError(
          `Expected JSON from ${method} ${path}, got "${text.slice(0, 80)}"`,
          res.status,
          "invalid_response",
        ),
      };
    }
    return { data: body as T, error: null };
  }
}

function errorFrom(res: Response, body: unknown, rawText: string | null): FluxbaseError {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const message = typeof b.error === "string"
      ? b.error
      : typeof b.message === "string"
      ? b.message
      : `HTTP ${res.status} ${res.statusText}`.trim();
    const code = typeof b.code === "string" ? b.code : codeForStatus(res.status);
    return new FluxbaseError(message, res.status, code, b.details);
  }
  const text = rawText?.trim();
  return new FluxbaseError(
    text
      ? `HTTP ${res.status}: ${text.slice(0, 200)}`
      : `HTTP ${res.status} ${res.statusText}`.trim(),
    res.status,
    codeForStatus(res.status),
  );
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 429:
      return "rate_limited";
    default:
      return status >= 500 ? "server_error" : "http_error";
  }
}

function queryString(query: Record<string, QueryValue> | undefined): string {
  if (!query) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Maps a successful response's data, passing errors through. */
export function mapData<A, B>(r: FluxbaseResponse<A>, f: (a: A) => B): FluxbaseResponse<B> {
  return r.error ? r : { data: f(r.data), error: null };
}

/** Percent-encodes one path segment (ids and names come from callers). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

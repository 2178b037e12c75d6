/**
 * Realtime benchmark: N sockets of U users, each subscribed to table:jobs.queue, while jobs
 * owned by those users report progress at R updates/s in total (plain SQL UPDATEs, as a
 * worker writes them). Reports delivery latency from the UPDATE to the client (p50/p99),
 * events/s, the hub process's RSS, and events delivered to the wrong user (must be 0).
 *
 * The hub runs in a child process (this file with `--serve`), so its memory is its own.
 *
 *   deno run -A bench/realtime.ts [--sockets 1000] [--users 100] [--rate 200] [--seconds 10]
 *
 * Database: DATABASE_URL / TEST_DATABASE_URL, else the embedded PostgreSQL of the tests.
 */
import { createTokenVerifier, signToken } from "../src/auth/jwt.ts";
import { loadConfig } from "../src/config.ts";
import { createPool } from "../src/db/pool.ts";
import { RealtimeHub } from "../src/realtime/hub.ts";

export interface RealtimeBenchOptions {
  sockets?: number;
  users?: number;
  updatesPerSecond?: number;
  seconds?: number;
  log?: (line: string) => void;
}

export interface RealtimeBenchResult {
  sockets: number;
  users: number;
  updates: number;
  expectedDeliveries: number;
  delivered: number;
  wrongUser: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  eventsPerSecond: number;
  serverRssMb: number;
  serverRssIdleMb: number;
}

const SECRET = "realtime-bench-secret-0123456789abcdef0123456789";

export async function benchRealtime(opts: RealtimeBenchOptions = {}): Promise<RealtimeBenchResult> {
  const sockets = opts.sockets ?? 1000;
  const users = opts.users ?? 100;
  const rate = opts.updatesPerSecond ?? 200;
  const seconds = opts.seconds ?? 10;
  const log = opts.log ?? console.log;
  const { createTestDatabase } = await import("../tests/_helpers/db.ts");
  const db = await createTestDatabase();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", new URL(import.meta.url).pathname, "--serve"],
    env: { BENCH_DATABASE_URL: db.url },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const clients: WebSocket[] = [];
  try {
    const port = await readPort(server.stdout);
    const jobs: { id: string; user: string }[] = [];
    for (let u = 0; u < users; u++) {
      const user = `bench-user-${u}`;
      const [row] = await db.sql<{ id: string }[]>`
        insert into jobs.queue (job_name, status, created_by, user_role)
        values ('bench', 'running', ${user}, 'authenticated') returning id`;
      jobs.push({ id: row.id, user });
    }
    const latencies: number[] = [];
    // The first second warms up JIT and connections and is not measured.
    let measureFrom = Infinity;
    let wrongUser = 0;
    const tokens = await Promise.all(
      Array.from({ length: users }, (_, u) => signToken(SECRET, { sub: `bench-user-${u}` }, "1h")),
    );
    for (let i = 0; i < sockets; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, sockets - i) }, async (_, k) => {
        const u = (i + k) % users;
        const ws = new WebSocket(`ws://127.0.0.1:${port}/realtime?token=${tokens[u]}`);
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error("socket failed to open"));
        });
        const acked = new Promise((resolve) => {
          ws.onmessage = (e) => {
            const m = JSON.parse(e.data);
            if (m.type === "ack") return resolve(null);
            if (m.type !== "postgres_changes") return;
            if (m.payload.record.created_by !== `bench-user-${u}`) wrongUser++;
            const sentAt = m.payload.record.progress?.data?.sent_at;
            if (typeof sentAt === "number" && sentAt >= measureFrom) {
              latencies.push(Date.now() - sentAt);
            }
          };
        });
        ws.send(JSON.stringify({ type: "subscribe", channel: "table:jobs.queue" }));
        await acked;
        clients.push(ws);
      }));
    }
    const rssIdle = await rss(server.pid);
    log(`realtime bench: ${sockets} sockets of ${users} users open; hub RSS ${rssIdle} MB`);

    const writer = createPool(db.url, { max: 8, applicationName: "bench-writer" });
    const warmup = rate;
    const total = rate * seconds + warmup;
    let started = performance.now();
    const inflight: Promise<unknown>[] = [];
    let rssPeak = rssIdle;
    for (let n = 0; n < total; n++) {
      if (n === warmup) {
        await Promise.all(inflight.splice(0));
        measureFrom = Date.now();
        started = performance.now();
      }
      const due = started + ((n < warmup ? n : n - warmup) * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const job = jobs[n % jobs.length];
      const progress = { percent: n % 100, message: `step ${n}`, data: { sent_at: Date.now() } };
      inflight.push(writer`update jobs.queue set progress = ${writer.json(progress)},
        last_progress_at = now() where id = ${job.id}`.execute());
      // postgres.js runs a query only once it is awaited or executed: execute() sends it now.
      if (inflight.length > 64) await Promise.all(inflight.splice(0));
      if (n % rate === 0) rssPeak = Math.max(rssPeak, await rss(server.pid));
    }
    await Promise.all(inflight);
    const expected = (total - warmup) * (sockets / users);
    const deadline = Date.now() + 10_000;
    while (latencies.length < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const elapsed = (performance.now() - started) / 1000;
    rssPeak = Math.max(rssPeak, await rss(server.pid));
    await writer.end();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
    const result: RealtimeBenchResult = {
      sockets,
      users,
      updates: total - warmup,
      expectedDeliveries: expected,
      delivered: latencies.length,
      wrongUser,
      latencyP50Ms: pct(0.5),
      latencyP99Ms: pct(0.99),
      latencyMaxMs: latencies.at(-1) ?? NaN,
      eventsPerSecond: Math.round(latencies.length / elapsed),
      serverRssMb: rssPeak,
      serverRssIdleMb: rssIdle,
    };
    log(
      `realtime bench: ${
        total - warmup
      } updates at ${rate}/s (after 1 s warm-up) -> ${result.delivered}/${expected} ` +
        `deliveries, ${result.eventsPerSecond} events/s, latency p50 ${result.latencyP50Ms} ms ` +
        `p99 ${result.latencyP99Ms} ms max ${result.latencyMaxMs} ms, hub RSS peak ` +
        `${rssPeak} MB, wrong-user deliveries ${wrongUser}`,
    );
    return result;
  } finally {
    for (const ws of clients) ws.close();
    server.kill("SIGTERM");
    await server.status;
    await db.drop();
  }
}

async function readPort(stream: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/PORT (\d+)\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Hub process exited before listening: ${text}`);
    text += value;
  }
  reader.releaseLock();
  return Number(/PORT (\d+)\n/.exec(text)![1]);
}

async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** The hub process: a RealtimeHub on Deno.serve, until SIGTERM. */
async function serve(databaseUrl: string) {
  const config = loadConfig({ env: {}, file: null });
  const sql = createPool(databaseUrl, { max: 4, applicationName: "bench-hub" });
  const hub = new RealtimeHub({
    config,
    sql,
    databaseUrl,
    verifier: createTokenVerifier({ secret: SECRET }),
  });
  await hub.start();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: ({ port }) => console.log(`PORT ${port}`) },
    (req) => hub.handleUpgrade(req),
  );
  Deno.addSignalListener("SIGTERM", async () => {
    await hub.stop();
    await server.shutdown();
    await sql.end({ timeout: 1 });
    Deno.exit(0);
  });
}

if (import.meta.main) {
  if (Deno.args[0] === "--serve") {
    await serve(Deno.env.get("BENCH_DATABASE_URL")!);
  } else {
    const arg = (name: string) => {
      const i = Deno.args.indexOf(`--${name}`);
      return i >= 0 ? Number(Deno.args[i + 1]) : undefined;
    };
    await benchRealtime({
      sockets: arg("sockets"),
      users: arg("users"),
      updatesPerSecond: arg("rate"),
      seconds: arg("seconds"),
    });
    Deno.exit(0);
  }
}

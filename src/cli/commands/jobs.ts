/** `fluxbase jobs ...`: submit, list, get, cancel, retry, logs, watch, stats. */
import { isFinalStatus, type Job, type JobLogLine } from "../../sdk/mod.ts";
import { UsageError } from "../args.ts";
import { type Context, positionals, unwrap } from "../context.ts";
import { keyValues, printRows, progressBar } from "../output.ts";

const JOB_KEYS = [
  "id",
  "job_name",
  "namespace",
  "status",
  "progress",
  "priority",
  "created_by",
  "user_email",
  "worker_id",
  "retry_count",
  "max_retries",
  "scheduled_at",
  "created_at",
  "started_at",
  "completed_at",
  "result",
  "error_message",
];

function printJob(ctx: Context, job: Job) {
  if (ctx.out.json) ctx.out.print(JSON.stringify(job));
  else ctx.out.print(keyValues(job, JOB_KEYS));
}

/** Exit code of a finished job for `--wait` and `watch`: 0 completed, 1 otherwise. */
function finalExit(job: Job): number {
  return job.status === "completed" ? 0 : 1;
}

export async function submit(ctx: Context): Promise<number> {
  const usage = "fluxbase jobs submit <name> [--payload JSON | --file F] [--namespace NS] " +
    "[--priority N] [--at TIME] [--wait] [--timeout SECONDS]";
  const payloadText = ctx.flags.string("payload");
  const file = ctx.flags.string("file");
  const namespace = ctx.flags.string("namespace");
  const priority = ctx.flags.int("priority");
  const at = ctx.flags.string("at");
  const wait = ctx.flags.bool("wait");
  const timeout = ctx.flags.int("timeout") ?? 300;
  ctx.flags.rejectUnknown();
  const [name] = positionals(ctx, ["name"], usage);
  if (payloadText !== undefined && file !== undefined) {
    throw new UsageError("Give either --payload or --file, not both");
  }
  let payload: unknown = undefined;
  const text = file !== undefined ? await readText(file) : payloadText;
  if (text !== undefined) {
    try {
      payload = JSON.parse(text);
    } catch (e) {
      throw new UsageError(
        `Payload ${file ? `in "${file}" ` : ""}is not valid JSON: ${(e as Error).message}`,
      );
    }
  }
  let scheduledAt: string | undefined;
  if (at !== undefined) {
    const d = new Date(at);
    if (Number.isNaN(d.getTime())) throw new UsageError(`--at "${at}" is not a date/time`);
    scheduledAt = d.toISOString();
  }
  const client = ctx.client();
  const job = unwrap(
    await client.jobs.submit(name, payload, { namespace, priority, scheduledAt }),
    `Cannot submit job "${name}"`,
  );
  if (!wait) {
    printJob(ctx, job);
    return 0;
  }
  if (!ctx.out.json) ctx.out.err(`Submitted ${job.id}; waiting...`);
  const done = unwrap(
    await client.jobs.waitFor(job.id, {
      timeoutMs: timeout * 1000,
      realtime: false,
      intervalMs: 500,
    }),
    `Job ${job.id}`,
  );
  printJob(ctx, done);
  return finalExit(done);
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`Cannot read "${path}": ${(e as Error).message}`);
  }
}

export async function list(ctx: Context): Promise<number> {
  const status = ctx.flags.string("status");
  const namespace = ctx.flags.string("namespace");
  const limit = ctx.flags.int("limit");
  const offset = ctx.flags.int("offset");
  ctx.flags.rejectUnknown();
  positionals(ctx, [], "fluxbase jobs list [--status S] [--namespace NS] [--limit N] [--offset N]");
  const statuses = ["pending", "running", "completed", "failed", "cancelled"];
  if (status && !statuses.includes(status)) {
    throw new UsageError(`--status must be one of ${statuses.join(", ")}, got "${status}"`);
  }
  const jobs = unwrap(
    await ctx.client().jobs.list({ status: status as Job["status"], namespace, limit, offset }),
    "Cannot list jobs",
  );
  printRows(ctx.out, jobs, "No jobs.", [
    ["ID", (j) => j.id],
    ["NAME", (j) => j.job_name],
    ["NAMESPACE", (j) => j.namespace],
    ["STATUS", (j) => j.status],
    ["PROGRESS", (j) => (j.progress ? `${j.progress.percent}%` : "-")],
    ["CREATED", (j) => j.created_at],
  ]);
  return 0;
}

export async function get(ctx: Context): Promise<number> {
  ctx.flags.rejectUnknown();
  const [id] = positionals(ctx, ["id"], "fluxbase jobs get <id>");
  printJob(ctx, unwrap(await ctx.client().jobs.get(id), `Cannot get job ${id}`));
  return 0;
}

export async function cancel(ctx: Context): Promise<number> {
  ctx.flags.rejectUnknown();
  const [id] = positionals(ctx, ["id"], "fluxbase jobs cancel <id>");
  const job = unwrap(await ctx.client().jobs.cancel(id), `Cannot cancel job ${id}`);
  if (ctx.out.json) ctx.out.print(JSON.stringify(job));
  else ctx.out.print(`Job ${id} cancelled`);
  return 0;
}

export async function retry(ctx: Context): Promise<number> {
  ctx.flags.rejectUnknown();
  const [id] = positionals(ctx, ["id"], "fluxbase jobs retry <id>");
  const job = unwrap(await ctx.client().jobs.retry(id), `Cannot retry job ${id}`);
  if (ctx.out.json) ctx.out.print(JSON.stringify(job));
  else ctx.out.print(`Retry job ID: ${job.id}`);
  return 0;
}

function logLine(ctx: Context, l: JobLogLine) {
  if (ctx.out.json) ctx.out.print(JSON.stringify(l));
  else ctx.out.print(`${String(l.line_number).padStart(4)} ${l.level.padEnd(5)} ${l.message}`);
}

export async function logs(ctx: Context): Promise<number> {
  const follow = ctx.flags.bool("follow");
  ctx.flags.rejectUnknown();
  const [id] = positionals(ctx, ["id"], "fluxbase jobs logs <id> [--follow]");
  const client = ctx.client();
  // Lines print in order, each once. A line that arrives ahead of one not shown yet (realtime
  // can deliver line 3 before the poll has read lines 1 and 2) waits for it; whatever still
  // waits when the job ends is printed then.
  let last = 0;
  const ahead = new Map<number, JobLogLine>();
  const show = (lines: JobLogLine[]) => {
    for (const l of lines) if (l.line_number > last) ahead.set(l.line_number, l);
    for (let next = ahead.get(last + 1); next; next = ahead.get(last + 1)) {
      ahead.delete(++last);
      logLine(ctx, next);
    }
  };
  const showRest = () => {
    for (const n of [...ahead.keys()].sort((a, b) => a - b)) logLine(ctx, ahead.get(n)!);
    ahead.clear();
  };
  show(unwrap(await client.jobs.getLogs(id), `Cannot read logs of job ${id}`));
  if (!follow) {
    showRest();
    return 0;
  }
  // Live lines over realtime when possible; the poll below also catches anything missed.
  const stream = client.realtime.available
    ? client.realtime.jobLogs(id, (l) => show([l]), { afterLine: last })
    : null;
  try {
    while (true) {
      const job = unwrap(await client.jobs.get(id), `Cannot read job ${id}`);
      show(unwrap(await client.jobs.getLogs(id, last), `Cannot read logs of job ${id}`));
      if (isFinalStatus(job.status)) {
        showRest();
        return finalExit(job);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    stream?.unsubscribe();
    client.realtime.disconnect();
  }
}

export async function watch(ctx: Context): Promise<number> {
  const timeout = ctx.flags.int("timeout") ?? 3600;
  ctx.flags.rejectUnknown();
  const [id] = positionals(ctx, ["id"], "fluxbase jobs watch <id> [--timeout SECONDS]");
  const client = ctx.client();
  const tty = ctx.out.isTerminal && !ctx.out.json;
  let lastLine = "";
  const draw = (job: Job) => {
    if (ctx.out.json) {
      ctx.out.print(JSON.stringify({ status: job.status, progress: job.progress }));
      return;
    }
    const line = `${job.status.padEnd(9)} ${
      progressBar(job.progress?.percent ?? 0, job.progress?.message)
    }`;
    if (line === lastLine) return;
    lastLine = line;
    if (tty) ctx.out.write(`\r\x1b[2K${line}`);
    else ctx.out.print(line);
  };
  try {
    const first = unwrap(await client.jobs.get(id), `Cannot watch job ${id}`);
    draw(first);
    const r = await client.jobs.waitFor(id, { timeoutMs: timeout * 1000, onUpdate: draw });
    const done = unwrap(r, `Job ${id}`);
    draw(done);
    if (tty) ctx.out.write("\n");
    if (ctx.out.json) ctx.out.print(JSON.stringify(done));
    else if (done.status === "completed") {
      ctx.out.print(`Result: ${JSON.stringify(done.result ?? null)}`);
    } else if (done.status === "failed") ctx.out.print(`Error: ${done.error_message ?? "unknown"}`);
    else ctx.out.print("Job was cancelled");
    return finalExit(done);
  } finally {
    client.realtime.disconnect();
  }
}

export async function stats(ctx: Context): Promise<number> {
  const namespace = ctx.flags.string("namespace");
  ctx.flags.rejectUnknown();
  positionals(ctx, [], "fluxbase jobs stats [--namespace NS]");
  const s = unwrap(await ctx.client().admin.jobs.getStats(namespace), "Cannot read job stats");
  if (ctx.out.json) ctx.out.print(JSON.stringify(s));
  else {
    ctx.out.print(keyValues(s, [
      "pending",
      "running",
      "completed",
      "failed",
      "cancelled",
      "total",
      "avg_duration_ms",
    ]));
  }
  return 0;
}

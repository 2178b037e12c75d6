/** `fluxbase functions ...` and `fluxbase workers list`. */
import { basename, dirname, extname, join } from "node:path";
import type { JobFunction } from "../../sdk/mod.ts";
import { UsageError } from "../args.ts";
import { type Context, positionals, unwrap } from "../context.ts";
import { printRows } from "../output.ts";

export async function list(ctx: Context): Promise<number> {
  const namespace = ctx.flags.string("namespace");
  ctx.flags.rejectUnknown();
  positionals(ctx, [], "fluxbase functions list [--namespace NS]");
  const fns = unwrap(await ctx.client().admin.jobs.list(namespace), "Cannot list functions");
  printRows(ctx.out, fns, "No functions.", [
    ["NAMESPACE", (f) => f.namespace],
    ["NAME", (f) => f.name],
    ["ENABLED", (f) => (f.enabled ? "yes" : "no")],
    ["VERSION", (f) => f.version],
    ["SCHEDULE", (f) => f.schedule],
    ["SOURCE", (f) => f.source],
    ["UPDATED", (f) => f.updated_at],
  ]);
  return 0;
}

/** `jobs/foo.ts` -> "foo"; `jobs/foo/index.ts` -> "foo". */
export function functionName(file: string): string {
  const base = basename(file, extname(file));
  return base === "index" ? basename(dirname(file)) : base;
}

export async function deploy(ctx: Context): Promise<number> {
  const namespace = ctx.flags.string("namespace") ?? "default";
  const nameFlag = ctx.flags.string("name");
  const disabled = ctx.flags.bool("disabled");
  ctx.flags.rejectUnknown();
  const [file] = positionals(
    ctx,
    ["file"],
    "fluxbase functions deploy <file> [--namespace NS] [--name N]",
  );
  const name = nameFlag ?? functionName(file);
  let code: string;
  try {
    code = await Deno.readTextFile(file);
  } catch (e) {
    throw new UsageError(`Cannot read "${file}": ${(e as Error).message}`);
  }
  const client = ctx.client();
  const created = await client.admin.jobs.create({ name, namespace, code, enabled: !disabled });
  let fn: JobFunction;
  let action = "Created";
  if (created.error?.status === 409) {
    fn = unwrap(
      await client.admin.jobs.update(namespace, name, { code, enabled: !disabled }),
      `Cannot update function "${namespace}/${name}"`,
    );
    action = "Updated";
  } else {
    fn = unwrap(created, `Cannot deploy function "${namespace}/${name}"`);
  }
  if (ctx.out.json) ctx.out.print(JSON.stringify(fn));
  else {
    ctx.out.print(
      `${action} function ${fn.namespace ?? namespace}/${fn.name ?? name}${
        fn.version !== undefined ? ` (version ${fn.version})` : ""
      }`,
    );
  }
  return 0;
}

/** Job files of a directory: `<name>.ts|.js` and `<name>/index.ts|.js`, skipping `_shared`. */
export async function collectJobFiles(dir: string): Promise<Array<{ name: string; code: string }>> {
  const out: Array<{ name: string; code: string }> = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
  } catch (e) {
    throw new UsageError(`Cannot read directory "${dir}": ${(e as Error).message}`);
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith("_") || e.name.startsWith(".")) continue;
    if (e.isFile && /\.(ts|js)$/.test(e.name) && !/\.(test|d)\.(ts|js)$/.test(e.name)) {
      out.push({ name: functionName(e.name), code: await Deno.readTextFile(join(dir, e.name)) });
    } else if (e.isDirectory) {
      for (const index of ["index.ts", "index.js"]) {
        try {
          out.push({ name: e.name, code: await Deno.readTextFile(join(dir, e.name, index)) });
          break;
        } catch { /* try the next index name */ }
      }
    }
  }
  return out;
}

export async function sync(ctx: Context): Promise<number> {
  const dir = ctx.flags.string("dir") ?? "./jobs";
  const namespace = ctx.flags.string("namespace") ?? "default";
  const deleteMissing = ctx.flags.bool("delete-missing");
  const dryRun = ctx.flags.bool("dry-run");
  const serverPath = ctx.flags.string("server-path");
  ctx.flags.rejectUnknown();
  positionals(
    ctx,
    [],
    "fluxbase functions sync [--dir ./jobs] [--namespace NS] [--delete-missing] [--dry-run]",
  );
  // Files are read here and sent, so the CLI works against a server on another machine;
  // --server-path asks the server to read a directory of its own instead.
  const jobs = serverPath === undefined ? await collectJobFiles(dir) : undefined;
  const r = unwrap(
    await ctx.client().admin.jobs.sync({
      namespace,
      path: serverPath,
      jobs,
      deleteMissing,
      dryRun,
    }),
    `Cannot sync functions of namespace "${namespace}"`,
  );
  if (ctx.out.json) ctx.out.print(JSON.stringify(r));
  else {
    const s = r.summary;
    ctx.out.print(
      `${dryRun ? "Dry run: " : ""}Created: ${s.created}, Updated: ${s.updated}, ` +
        `Deleted: ${s.deleted}, Unchanged: ${s.unchanged}, Errors: ${s.errors}`,
    );
  }
  return r.summary.errors > 0 ? 1 : 0;
}

export async function setEnabled(ctx: Context, enabled: boolean): Promise<number> {
  const namespace = ctx.flags.string("namespace") ?? "default";
  ctx.flags.rejectUnknown();
  const verb = enabled ? "enable" : "disable";
  const [name] = positionals(ctx, ["name"], `fluxbase functions ${verb} <name> [--namespace NS]`);
  const fn = unwrap(
    await ctx.client().admin.jobs.update(namespace, name, { enabled }),
    `Cannot ${verb} function "${namespace}/${name}"`,
  );
  if (ctx.out.json) ctx.out.print(JSON.stringify(fn));
  else ctx.out.print(`Function ${namespace}/${name} ${enabled ? "enabled" : "disabled"}`);
  return 0;
}

export async function workers(ctx: Context): Promise<number> {
  ctx.flags.rejectUnknown();
  positionals(ctx, [], "fluxbase workers list");
  const ws = unwrap(await ctx.client().admin.jobs.listWorkers(), "Cannot list workers");
  printRows(ctx.out, ws, "No workers.", [
    ["ID", (w) => w.id],
    ["NAME", (w) => w.name],
    ["HOST", (w) => w.hostname],
    ["PID", (w) => w.pid],
    ["STATUS", (w) => w.status],
    ["JOBS", (w) => `${w.current_job_count}/${w.max_concurrent_jobs}`],
    ["LAST HEARTBEAT", (w) => w.last_heartbeat_at],
  ]);
  return 0;
}

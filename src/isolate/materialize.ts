/**
 * Lays a bundle out as files in a private temporary directory and writes a main module for its
 * Worker. Why files, measured on Deno 2.9.6 in a Worker with `read: false`: static imports of the
 * Worker's main module graph load without read permission, so siblings, `../_shared/` and `npm:`
 * imports work, and stack traces keep real line numbers; a dynamic `import()` of a file not yet
 * loaded needs read permission ("Requires read access"), so the main module also imports every
 * file of the bundle up front (a job's lazy `import("./x.ts")` then finds it loaded). `data:`
 * URLs cannot import relative paths, and blob: URLs would need every import rewritten.
 *
 * `deno test` (and `deno run --check`) type-check a Worker's module graph when it loads
 * (measured: a handler with untyped parameters failed with TS7006 inside the isolate), while a
 * plain `deno run` does not. Job code must behave the same however the server was started, so
 * each TypeScript file gets a `// @ts-nocheck` line on top, and `rewriteTrace` takes that line
 * back out of the line numbers in errors (and shows paths inside the function, not /tmp).
 */
import { dirname, join, normalize } from "node:path";
import { pathToFileURL } from "node:url";
import type { FunctionBundle } from "./types.ts";

const ENTRY_URL = new URL("./entry.ts", import.meta.url).href;
const ENTRY_FILE = "index.ts";
const MAIN_FILE = "__fluxbase_main__.ts";

export interface MaterializedBundle {
  mainUrl: URL;
  dir: string;
  /** Maps temp-file locations in an error message or stack back to the function's own files. */
  rewriteTrace(text: string): string;
  remove(): Promise<void>;
}

const NO_CHECK = "// @ts-nocheck\n";
const TYPESCRIPT = /\.[cm]?tsx?$/;

export async function materializeBundle(
  bundle: FunctionBundle,
  parentDir?: string,
): Promise<MaterializedBundle> {
  const paths = Object.keys(bundle.files).map((path) => checkedPath(path, bundle.name));
  // Deep enough that every "../" of a file key stays inside the directory.
  const depth = Math.max(0, ...paths.map((p) => p.split("/").filter((s) => s === "..").length));
  const root = await Deno.makeTempDir({ dir: parentDir, prefix: `fluxbase-${safe(bundle.name)}-` });
  await Deno.chmod(root, 0o700);
  const entryDir = join(root, ...Array(depth).fill("fn"));
  await Deno.mkdir(entryDir, { recursive: true });
  await Deno.writeTextFile(join(entryDir, ENTRY_FILE), NO_CHECK + bundle.code);
  for (const [key, source] of Object.entries(bundle.files)) {
    const target = normalize(join(entryDir, key));
    if (!target.startsWith(root + "/")) {
      throw new Error(`Bundle "${bundle.name}": file "${key}" lies outside the function`);
    }
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.writeTextFile(target, TYPESCRIPT.test(target) ? NO_CHECK + source : source);
  }
  const preload = paths
    .filter((p) => /\.[cm]?[jt]sx?$/.test(p))
    .map((p) => `import ${JSON.stringify(p.startsWith(".") ? p : `./${p}`)};`);
  const main = [
    `import { start } from ${JSON.stringify(ENTRY_URL)};`,
    `import * as job from "./${ENTRY_FILE}";`,
    ...preload,
    "start(job);",
    "",
  ].join("\n");
  const mainPath = join(entryDir, MAIN_FILE);
  await Deno.writeTextFile(mainPath, main);
  return {
    mainUrl: pathToFileURL(mainPath),
    dir: root,
    rewriteTrace: traceRewriter(root, entryDir, bundle.name),
    remove: () => Deno.remove(root, { recursive: true }).catch(() => {}),
  };
}

function traceRewriter(root: string, entryDir: string, name: string) {
  const rootUrl = pathToFileURL(root).href + "/";
  const entryUrl = pathToFileURL(entryDir).href + "/";
  const location = new RegExp(`${escapeRegExp(rootUrl)}([^\\s:)]+)(?::(\\d+))?`, "g");
  return (text: string) =>
    text.replace(location, (_match, path: string, line: string | undefined) => {
      const url = rootUrl + path;
      if (url.endsWith(`/${MAIN_FILE}`)) return `${name} (module loader)`;
      const shown = url.startsWith(entryUrl)
        ? `${name}/${url.slice(entryUrl.length)}`
        : path.replace(/^(fn\/)+/, "");
      if (line === undefined) return shown;
      const shift = TYPESCRIPT.test(path) ? 1 : 0;
      return `${shown}:${Math.max(1, Number(line) - shift)}`;
    });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function checkedPath(key: string, name: string): string {
  if (key.startsWith("/") || key.includes("\\") || key.includes("\0")) {
    throw new Error(`Bundle "${name}": file "${key}" must be a relative path`);
  }
  return normalize(key);
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40);
}

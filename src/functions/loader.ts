/**
 * Reads job functions from a directory: `<name>.ts|.js`, or `<name>/index.ts|.js` with sibling
 * modules and imports of `../_shared/`. Each function carries the source of every local module it
 * imports, so a worker on another machine runs exactly what was loaded here. A bad file is
 * reported and skipped; the others still load.
 */
import { dirname, join, normalize, relative } from "node:path";
import { type FunctionAnnotations, parseAnnotations } from "./annotations.ts";

export interface LoadedFunction {
  name: string;
  /** From `@fluxbase:namespace`, else "default". */
  namespace: string;
  /** Source of the entry module. */
  code: string;
  /** Every local module the entry imports, transitively: path relative to the entry -> source. */
  files: Record<string, string>;
  annotations: FunctionAnnotations;
  /** The entry module's path: `dir` joined with its path inside it. */
  sourcePath: string;
}

export interface LoadError {
  file: string;
  message: string;
}

export interface LoadResult {
  functions: LoadedFunction[];
  errors: LoadError[];
}

/** The same rule as the `jobs.functions.name` column check. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MODULE_EXTENSIONS = [".ts", ".js"];
/** Names starting with "_" or "." hold shared code (`_shared/`) or tooling, not functions. */
const NOT_A_FUNCTION = /^[_.]/;

export async function loadFunctionsDir(dir: string): Promise<LoadResult> {
  const result: LoadResult = { functions: [], errors: [] };
  const entries: Array<{ name: string; entry: string }> = [];
  for await (const item of Deno.readDir(dir)) {
    if (NOT_A_FUNCTION.test(item.name)) continue;
    if (item.isFile) {
      const ext = MODULE_EXTENSIONS.find((e) => item.name.endsWith(e));
      if (!ext || item.name.endsWith(".d.ts") || /[._]test\.[jt]s$/.test(item.name)) continue;
      entries.push({ name: item.name.slice(0, -ext.length), entry: item.name });
    } else if (item.isDirectory) {
      const index = await findIndex(join(dir, item.name));
      if (index) entries.push({ name: item.name, entry: join(item.name, index) });
      else {
        result.errors.push({
          file: join(dir, item.name),
          message: `${join(dir, item.name)}: directory has no index.ts or index.js`,
        });
      }
    }
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const { name, entry } of entries) {
    const sourcePath = join(dir, entry);
    try {
      result.functions.push(await loadFunction(dir, name, entry));
    } catch (e) {
      result.errors.push({ file: sourcePath, message: (e as Error).message });
    }
  }
  return result;
}

async function findIndex(path: string): Promise<string | null> {
  for (const ext of MODULE_EXTENSIONS) {
    try {
      if ((await Deno.stat(join(path, `index${ext}`))).isFile) return `index${ext}`;
    } catch {
      // Not there; try the next extension.
    }
  }
  return null;
}

async function loadFunction(dir: string, name: string, entry: string): Promise<LoadedFunction> {
  const sourcePath = join(dir, entry);
  if (!NAME_PATTERN.test(name)) {
    throw new Error(
      `${sourcePath}: "${name}" is not a valid function name (letters, digits, _ . -, up to 128 characters)`,
    );
  }
  const code = await Deno.readTextFile(sourcePath);
  const parsed = parseAnnotations(code, sourcePath);
  if (!parsed.ok) throw new Error(parsed.errors.join("\n"));
  const files = await collectLocalImports(dir, entry, code);
  return {
    name,
    namespace: parsed.annotations.namespace ?? "default",
    code,
    files,
    annotations: parsed.annotations,
    sourcePath,
  };
}

/**
 * Follows relative imports from the entry, transitively. Keys are relative to the entry's
 * directory ("./lib.ts", "../_shared/db.ts"), which is how the isolate lays the files out again.
 */
async function collectLocalImports(
  root: string,
  entry: string,
  entryCode: string,
): Promise<Record<string, string>> {
  const entryDir = dirname(entry);
  const files: Record<string, string> = {};
  const queue: Array<{ from: string; code: string }> = [{ from: entry, code: entryCode }];
  const visited = new Set([normalize(entry)]);
  while (queue.length > 0) {
    const { from, code } = queue.shift()!;
    for (const specifier of localImports(code)) {
      const target = normalize(join(dirname(from), specifier));
      if (target.startsWith("..") || specifier.startsWith("/")) {
        throw new Error(
          `${
            join(root, from)
          }: imports "${specifier}", which is outside the jobs directory ${root}`,
        );
      }
      if (visited.has(target)) continue;
      visited.add(target);
      let source: string;
      try {
        source = await Deno.readTextFile(join(root, target));
      } catch (e) {
        throw new Error(
          `${join(root, from)}: imports "${specifier}", which cannot be read (${
            (e as Error).message
          })`,
        );
      }
      files[asRelativeSpecifier(relative(entryDir, target))] = source;
      queue.push({ from: target, code: source });
    }
  }
  return files;
}

function asRelativeSpecifier(path: string): string {
  return path.startsWith("..") ? path : `./${path}`;
}

const STATIC_IMPORT = /(?:^|[;\s])(?:import|export)\s+(?:[^'";]*?\s+from\s+)?["']([^"']+)["']/g;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

/** Relative and absolute-path specifiers of static and literal dynamic imports. */
export function localImports(code: string): string[] {
  const found = new Set<string>();
  for (const pattern of [STATIC_IMPORT, DYNAMIC_IMPORT]) {
    for (const match of code.matchAll(pattern)) {
      const specifier = match[1];
      if (specifier.startsWith("./") || specifier.startsWith("../") || specifier.startsWith("/")) {
        found.add(specifier);
      }
    }
  }
  return [...found];
}

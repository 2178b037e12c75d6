/**
 * Builds the SDK as the npm package `@fluxbase/sdk` in `dist/npm`: ESM JavaScript plus
 * `.d.ts`, compiled from `src/sdk/` by the TypeScript compiler (relative `.ts` imports are
 * rewritten to `.js`). The SDK uses only web standards, so nothing Deno-specific is emitted;
 * the build fails if a bare `Deno.` reference appears in the output.
 *
 * Run: deno run -A --no-lock scripts/build_npm.ts [--out dist/npm] [--version 0.1.0]
 */
// Build-time only, so it stays out of deno.json imports (the server's runtime dependencies).
// deno-lint-ignore no-import-prefix
import ts from "npm:typescript@5.8.3";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

export async function buildNpm(outDir: string, version: string): Promise<string[]> {
  const srcDir = join(root, "src/sdk");
  const files: string[] = [];
  for await (const e of Deno.readDir(srcDir)) {
    if (e.isFile && e.name.endsWith(".ts")) files.push(join(srcDir, e.name));
  }
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    declaration: true,
    strict: true,
    noImplicitReturns: true,
    skipLibCheck: true,
    rewriteRelativeImportExtensions: true,
    allowImportingTsExtensions: true,
    rootDir: srcDir,
    outDir,
    types: [],
    newLine: ts.NewLineKind.LineFeed,
  };
  const program = ts.createProgram(files, options);
  const result = program.emit();
  const diags = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics];
  if (diags.length > 0) {
    const host: ts.FormatDiagnosticsHost = {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => "\n",
    };
    throw new Error(`TypeScript errors:\n${ts.formatDiagnostics(diags, host)}`);
  }
  const emitted: string[] = [];
  for await (const e of Deno.readDir(outDir)) emitted.push(e.name);
  for (const name of emitted.filter((n) => n.endsWith(".js"))) {
    const text = await Deno.readTextFile(join(outDir, name));
    // Optional feature detection (globalThis.Deno?.x) is fine; a bare Deno.x would crash Node.
    if (/(^|[^.\w?])Deno\./m.test(text)) throw new Error(`${name} references the Deno global`);
    if (/from\s+["'][^"']+\.ts["']/.test(text)) throw new Error(`${name} still imports .ts files`);
  }
  const pkg = {
    name: "@fluxbase/sdk",
    version,
    description: "Fluxbase Jobs SDK: submit background jobs, follow progress live, manage them",
    license: "MIT",
    type: "module",
    main: "./mod.js",
    types: "./mod.d.ts",
    exports: { ".": { types: "./mod.d.ts", import: "./mod.js", default: "./mod.js" } },
    files: ["*.js", "*.d.ts", "README.md"],
    sideEffects: false,
    engines: { node: ">=20" },
  };
  await Deno.writeTextFile(join(outDir, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  await Deno.writeTextFile(join(outDir, "README.md"), README);
  return emitted.sort();
}

const README = `# @fluxbase/sdk

Client for Fluxbase Jobs: submit background jobs, follow their progress live over
WebSocket, and manage jobs, functions and workers as an admin. No dependencies; every
call resolves to \`{ data, error }\` and never rejects on HTTP or network errors.

\`\`\`ts
import { createClient } from "@fluxbase/sdk";

const client = createClient("http://localhost:8080", { apiKey: "your-anon-key" });
const { data: job, error } = await client.jobs.submit("process-data", { items: [1, 2, 3] });
if (error) console.error(error.status, error.code, error.message);
else console.log((await client.jobs.waitFor(job.id)).data?.result);
\`\`\`

## Node 20 and realtime

Node 20 has \`fetch\` but no global \`WebSocket\` (Node 22 has one). Realtime features
(\`client.realtime\`, and \`jobs.waitFor\` without polling) need one: install \`ws\` and pass it.

\`\`\`ts
import { WebSocket } from "ws";
const client = createClient(url, { serviceKey, WebSocket });
\`\`\`

Without it, \`channel.subscribe()\` reports \`CHANNEL_ERROR\` with code
\`realtime_unavailable\` and \`jobs.waitFor()\` falls back to polling.

## Custom transport

\`createClient(url, { fetch })\` routes every HTTP call through your \`fetch\`.
`;

if (import.meta.main) {
  const out = flag("out") ?? join(root, "dist/npm");
  const version = flag("version") ?? "0.1.0";
  const files = await buildNpm(out, version);
  console.log(
    `Built @fluxbase/sdk@${version} in ${relative(Deno.cwd(), out) || "."}: ${files.join(" ")}`,
  );
}

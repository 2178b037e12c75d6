/** `fluxbase token`: mints an HS256 development token from the server's secret. */
import { SignJWT } from "jose";
import { join } from "node:path";
import { UsageError } from "../args.ts";
import { CliError, type Context } from "../context.ts";

/** The secret: FLUXBASE_AUTH_JWT_SECRET, else the file a dev server generated. */
export async function findSecret(env: (n: string) => string | undefined): Promise<string> {
  const fromEnv = env("FLUXBASE_AUTH_JWT_SECRET");
  if (fromEnv) return fromEnv;
  const dataDir = env("FLUXBASE_DATA_DIR") ?? ".fluxbase";
  const file = join(dataDir, "jwt_secret");
  try {
    const s = (await Deno.readTextFile(file)).trim();
    if (s) return s;
  } catch { /* reported below */ }
  throw new CliError(
    `No JWT secret: set FLUXBASE_AUTH_JWT_SECRET or run next to a dev server (looked for "${file}")`,
  );
}

export async function token(ctx: Context): Promise<number> {
  const sub = ctx.flags.string("sub");
  const role = ctx.flags.string("role") ?? "authenticated";
  const email = ctx.flags.string("email");
  const expires = ctx.flags.string("expires") ?? "1h";
  ctx.flags.rejectUnknown();
  if (ctx.args.length > 0) throw new UsageError(`Unexpected argument "${ctx.args[0]}"`);
  if (!sub) {
    throw new UsageError(
      "Missing --sub <user id>; usage: fluxbase token --sub <id> [--role R] [--email E] [--expires 1h]",
    );
  }
  if (
    !/^\d+\s*[smhdw]?$|^\d+\s*(sec|secs|second|seconds|min|mins|minute|minutes|hour|hours|day|days|week|weeks)$/
      .test(expires)
  ) {
    throw new UsageError(
      `--expires must look like 30m, 1h, 7d or a number of seconds, got "${expires}"`,
    );
  }
  const secret = await findSecret(ctx.env);
  const claims: Record<string, unknown> = { role };
  if (email) claims.email = email;
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setIssuer("fluxbase")
    .setExpirationTime(
      /^\d+$/.test(expires) ? Math.floor(Date.now() / 1000) + Number(expires) : expires,
    )
    .sign(new TextEncoder().encode(secret));
  if (ctx.out.json) {
    ctx.out.print(JSON.stringify({ token: jwt, sub, role, email: email ?? null, expires }));
  } else ctx.out.print(jwt);
  return 0;
}

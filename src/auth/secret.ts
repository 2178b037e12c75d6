/**
 * The JWT secret: FLUXBASE_AUTH_JWT_SECRET when set; otherwise generated on first start
 * (48 random bytes) and kept in `<dataDir>/jwt_secret` (mode 0600) so tokens and API keys
 * stay valid across restarts.
 */
import { join } from "node:path";

export async function resolveJwtSecret(
  configured: string | null,
  dataDir: string,
): Promise<string> {
  if (configured) return configured;
  const file = join(dataDir, "jwt_secret");
  try {
    const existing = (await Deno.readTextFile(file)).trim();
    if (existing.length >= 32) return existing;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dataDir, { recursive: true });
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  const secret = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
  // createNew: two processes starting at once must not both write different secrets.
  try {
    await Deno.writeTextFile(file, secret, { mode: 0o600, createNew: true });
    return secret;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return (await Deno.readTextFile(file)).trim();
    throw e;
  }
}

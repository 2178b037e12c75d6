import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { createTokenVerifier, signToken } from "../src/auth/jwt.ts";
import { resolveJwtSecret } from "../src/auth/secret.ts";
import { startTestServer } from "./_helpers/server.ts";

const SECRET = "s".repeat(48);
const verifier = createTokenVerifier({ secret: SECRET, clockToleranceSeconds: 1 });

function b64url(s: string) {
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

Deno.test("verify() accepts a valid user token and maps its claims", async () => {
  const token = await signToken(SECRET, { sub: "auth0|123", email: "a@b.c" }, "1h");
  const ctx = await verifier.verify(token);
  assert.equal(ctx.userId, "auth0|123");
  assert.equal(ctx.role, "authenticated");
  assert.equal(ctx.dbRole, "authenticated");
  assert.equal(ctx.email, "a@b.c");
  assert.ok(ctx.expiresAt! > Date.now() / 1000);
});

Deno.test("verify() maps admin roles to the authenticated database role", async () => {
  const ctx = await verifier.verify(await signToken(SECRET, { sub: "x", role: "admin" }, "1h"));
  assert.equal(ctx.role, "admin");
  assert.equal(ctx.dbRole, "authenticated");
});

Deno.test("verify() rejects bad tokens with UnauthorizedError", async (t) => {
  const cases: [string, () => Promise<string>, RegExp][] = [
    ["forged signature", () => signToken("x".repeat(48), { sub: "a" }, "1h"), /signature/],
    [
      "expired",
      () => signToken(SECRET, { sub: "a" }, Math.floor(Date.now() / 1000) - 60),
      /expired/,
    ],
    ["no exp on a user token", () => signToken(SECRET, { sub: "a" }), /no expiry/],
    ["user token without sub", () => signToken(SECRET, { role: "authenticated" }, "1h"), /no sub/],
    [
      "invalid role claim",
      () => signToken(SECRET, { sub: "a", role: "Robert'); DROP" }, "1h"),
      /role/,
    ],
    [
      "alg none",
      () =>
        Promise.resolve(
          `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url('{"sub":"a","role":"service_role"}')}.`,
        ),
      /algorithm/,
    ],
    [
      "HS512 with the right secret",
      () =>
        new SignJWT({ sub: "a" }).setProtectedHeader({ alg: "HS512" }).setExpirationTime("1h")
          .sign(new TextEncoder().encode(SECRET)),
      /algorithm/,
    ],
    ["garbage", () => Promise.resolve("not.a.jwt"), /Malformed/],
    ["two parts", () => Promise.resolve("abc.def"), /Malformed/],
  ];
  for (const [name, make, message] of cases) {
    await t.step(name, async () => {
      const token = await make();
      await assert.rejects(() => verifier.verify(token), (e: Error & { status?: number }) => {
        assert.equal(e.status, 401);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("resolveJwtSecret() generates once and reuses the secret", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await resolveJwtSecret(null, dir);
    assert.ok(first.length >= 64);
    assert.equal(await resolveJwtSecret(null, dir), first);
    assert.equal((await Deno.stat(`${dir}/jwt_secret`)).mode! & 0o777, 0o600);
    assert.equal(await resolveJwtSecret("configured-secret", dir), "configured-secret");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HTTP: bad tokens get 401 JSON, never 500; apikey header works", async () => {
  const server = await startTestServer();
  try {
    const bad: Record<string, string>[] = [
      { authorization: "Bearer nonsense" },
      { authorization: "Basic abc" },
      { authorization: `Bearer ${await signToken("y".repeat(40), { sub: "a" }, "1h")}` },
      { apikey: "x.y.z" },
      {},
    ];
    for (const headers of bad) {
      const res = await server.request("GET", "/api/v1/jobs", { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(typeof res.body.error, "string");
      assert.ok(res.body.code);
    }
    const viaApikey = await server.request("GET", "/api/v1/admin/jobs/stats", {
      headers: { apikey: server.serviceKey },
    });
    assert.equal(viaApikey.status, 200);
    assert.equal(viaApikey.body.total, 0);
  } finally {
    await server.stop();
  }
});

Deno.test("FLUXBASE_AUTH_JWKS_URL: RS256 tokens of an identity provider are accepted", async () => {
  const { generateKeyPair, exportJWK } = await import("jose");
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const idp = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => Response.json({ keys: [jwk] }),
  );
  try {
    const jwks = createTokenVerifier({
      secret: SECRET,
      jwksUrl: `http://127.0.0.1:${idp.addr.port}/.well-known/jwks.json`,
    });
    const token = await new SignJWT({ sub: "idp|7", email: "u@idp.example" })
      .setProtectedHeader({ alg: "RS256", kid: "k1" }).setExpirationTime("5m").sign(privateKey);
    const ctx = await jwks.verify(token);
    assert.equal(ctx.userId, "idp|7");
    assert.equal(ctx.role, "authenticated");
    // Without a JWKS URL the same token is refused.
    await assert.rejects(() => verifier.verify(token), /algorithm "RS256" is not accepted/);
    // Signed by another key with the same kid: refused.
    const other = await generateKeyPair("RS256");
    const forged = await new SignJWT({ sub: "idp|7" }).setProtectedHeader({
      alg: "RS256",
      kid: "k1",
    })
      .setExpirationTime("5m").sign(other.privateKey);
    await assert.rejects(() => jwks.verify(forged), /signature/);
  } finally {
    await idp.shutdown();
  }
});

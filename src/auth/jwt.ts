/**
 * JWT verification and signing. HS256 tokens are signed with FLUXBASE_AUTH_JWT_SECRET; with
 * FLUXBASE_AUTH_JWKS_URL set, RS256/ES256 tokens of an external identity provider are
 * accepted too. Algorithms are pinned per key type, so `alg: none` and algorithm-confusion
 * tokens fail verification. Every failure is an UnauthorizedError (401), never a 500.
 */
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "jose";
import { UnauthorizedError } from "../errors.ts";
import { type AuthContext, dbRoleFor } from "./context.ts";

export interface VerifiedToken extends AuthContext {
  /** `exp` in seconds since the epoch, or null for tokens without one (the API keys). */
  expiresAt: number | null;
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
}

export interface VerifierOptions {
  secret: string;
  jwksUrl?: string | null;
  clockToleranceSeconds?: number;
}

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Roles whose keys are long-lived API keys rather than user sessions. */
const KEY_ROLES = new Set(["anon", "service_role"]);

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const key = new TextEncoder().encode(options.secret);
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : null;
  const clockTolerance = options.clockToleranceSeconds ?? 5;

  return {
    async verify(token: string): Promise<VerifiedToken> {
      if (!token || token.split(".").length !== 3) {
        throw new UnauthorizedError("Malformed access token", "invalid_token");
      }
      let alg: string | undefined;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw new UnauthorizedError("Malformed access token", "invalid_token");
      }
      let payload: JWTPayload;
      try {
        if (alg === "HS256") {
          ({ payload } = await jwtVerify(token, key, { algorithms: ["HS256"], clockTolerance }));
        } else if (jwks && (alg === "RS256" || alg === "ES256")) {
          ({ payload } = await jwtVerify(token, jwks, {
            algorithms: ["RS256", "ES256"],
            clockTolerance,
          }));
        } else {
          throw new UnauthorizedError(
            `Access token algorithm ${JSON.stringify(alg ?? null)} is not accepted`,
            "invalid_token",
          );
        }
      } catch (e) {
        if (e instanceof UnauthorizedError) throw e;
        const code = (e as { code?: string }).code;
        if (code === "ERR_JWT_EXPIRED") {
          throw new UnauthorizedError("Access token has expired", "token_expired");
        }
        throw new UnauthorizedError("Invalid access token signature or claims", "invalid_token");
      }
      return toContext(payload);
    },
  };
}

function toContext(payload: JWTPayload): VerifiedToken {
  const role = payload.role === undefined ? "authenticated" : payload.role;
  if (typeof role !== "string" || !ROLE_NAME.test(role)) {
    throw new UnauthorizedError("Access token has an invalid role claim", "invalid_token");
  }
  if (payload.exp === undefined && !KEY_ROLES.has(role)) {
    throw new UnauthorizedError("Access token has no expiry (exp)", "invalid_token");
  }
  const sub = payload.sub;
  if (sub !== undefined && (typeof sub !== "string" || sub === "" || sub.length > 256)) {
    throw new UnauthorizedError("Access token has an invalid sub claim", "invalid_token");
  }
  if (role !== "anon" && role !== "service_role" && !sub) {
    throw new UnauthorizedError("Access token of a user has no sub claim", "invalid_token");
  }
  const email = typeof payload.email === "string" ? payload.email : null;
  return {
    role,
    dbRole: dbRoleFor(role),
    userId: sub ?? null,
    email,
    claims: { ...payload, role },
    expiresAt: payload.exp ?? null,
  };
}

/** Mints an HS256 token; `expiresIn` like "1h", "15m", "10y" (jose's time span syntax). */
export async function signToken(
  secret: string,
  claims: Record<string, unknown>,
  expiresIn?: string | number,
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt()
    .setIssuer("fluxbase");
  if (expiresIn !== undefined) jwt = jwt.setExpirationTime(expiresIn);
  return await jwt.sign(new TextEncoder().encode(secret));
}

/** The two API keys printed at start-up: long-lived JWTs of the anon and service roles. */
export async function apiKeys(secret: string): Promise<{ anonKey: string; serviceKey: string }> {
  return {
    anonKey: await signToken(secret, { role: "anon" }, "10y"),
    serviceKey: await signToken(secret, { role: "service_role" }, "10y"),
  };
}

/**
 * Hono middleware: reads the token from `Authorization: Bearer` (a user session) or, when
 * absent, the `apikey` header (the anon or service key), verifies it and puts the
 * AuthContext on the request. Admin routes add `requireAdmin`.
 */
import type { MiddlewareHandler } from "hono";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";
import { type AuthContext, isAdmin } from "./context.ts";
import type { TokenVerifier } from "./jwt.ts";

export type AuthEnv = { Variables: { auth: AuthContext } };

export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new UnauthorizedError("Authorization header must be 'Bearer <token>'");
    return match[1];
  }
  return req.headers.get("apikey");
}

export function authenticate(verifier: TokenVerifier): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.raw);
    if (!token) {
      throw new UnauthorizedError("Missing access token (Authorization or apikey header)");
    }
    c.set("auth", await verifier.verify(token));
    await next();
  };
}

export const requireAdmin: MiddlewareHandler<AuthEnv> = async (c, next) => {
  const auth = c.get("auth");
  if (!isAdmin(auth)) {
    throw new ForbiddenError(
      `Role "${auth.role}" cannot use the admin API; it needs admin, dashboard_admin or service_role`,
      { required_roles: ["admin", "dashboard_admin", "service_role"] },
    );
  }
  await next();
};

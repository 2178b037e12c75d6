/**
 * Runs user-facing SQL under the caller's database role and JWT claims, so the RLS policies
 * decide what the caller sees. SET LOCAL and set_config(..., true) end with the transaction,
 * so a pooled connection never carries one request's identity into the next, even when the
 * request failed mid-transaction (the rollback discards both).
 */
import type { AuthContext } from "../auth/context.ts";
import type { Sql, Tx } from "./pool.ts";

export function asUser<T>(sql: Sql, auth: AuthContext, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select set_config('role', ${auth.dbRole}, true),
                    set_config('request.jwt.claims', ${JSON.stringify(auth.claims)}, true)`;
    return await fn(tx);
  }) as Promise<T>;
}

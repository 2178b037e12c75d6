/**
 * Who may see an event: the realtime mirror of the SELECT policies on jobs.queue
 * (migrations/0002_jobs.sql), decided on the row carried by the event, never on a re-read
 * (a deleted row cannot be re-read, and a re-read can show a later state).
 *
 *   service_role (BYPASSRLS)                       every row
 *   role claim admin / dashboard_admin             every row ("Admins can read all jobs")
 *   anon                                           nothing (SELECT granted, no policy)
 *   any other role, as authenticated               rows whose created_by = sub
 *
 * tests/realtime_rls_test.ts runs the same rows through the database's policies and checks
 * that both agree for each kind of subscriber.
 */
import type { AuthContext } from "../auth/context.ts";
import type { RealtimeTable } from "./tables.ts";

/** What a subscriber may see of a table: everything, one owner's rows, or nothing. */
export type Visibility = { kind: "all" } | { kind: "owner"; userId: string } | { kind: "none" };

export type Subscriber = Pick<AuthContext, "role" | "dbRole" | "userId">;

export function visibilityOf(auth: Subscriber): Visibility {
  if (auth.dbRole === "service_role") return { kind: "all" };
  if (auth.dbRole === "anon") return { kind: "none" };
  // auth.is_admin() reads the role claim; those roles run as authenticated.
  if (auth.role === "admin" || auth.role === "dashboard_admin") return { kind: "all" };
  // auth.uid() is nullif(sub, ''): a token without a subject owns nothing.
  if (auth.userId) return { kind: "owner", userId: auth.userId };
  return { kind: "none" };
}

/** The row an event is about: the new row, or the old one for a delete. */
export function eventRow(
  type: string,
  record: Record<string, unknown> | null,
  oldRecord: Record<string, unknown> | null,
): Record<string, unknown> | null {
  return type === "DELETE" ? oldRecord : record;
}

export function canSee(
  auth: Subscriber,
  table: RealtimeTable,
  row: Record<string, unknown> | null,
): boolean {
  if (!row) return false;
  const v = visibilityOf(auth);
  if (v.kind === "all") return true;
  if (v.kind === "none") return false;
  const owner = row[table.ownerColumn];
  return typeof owner === "string" && owner === v.userId;
}

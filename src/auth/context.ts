/** Who is calling: the verified claims of a request, and the database role they map to. */
export type DbRole = "anon" | "authenticated" | "service_role";

export interface AuthContext {
  /** The JWT `role` claim: anon, authenticated, service_role, admin, dashboard_admin, custom. */
  role: string;
  /** The Postgres role the request runs as (SET LOCAL ROLE). */
  dbRole: DbRole;
  /** `sub`: text, since ids from external identity providers need not be UUIDs. */
  userId: string | null;
  email: string | null;
  /** All verified claims; set as request.jwt.claims for RLS. */
  claims: Record<string, unknown>;
}

export const ADMIN_ROLES = ["admin", "dashboard_admin", "service_role"] as const;

export function dbRoleFor(role: string): DbRole {
  if (role === "anon") return "anon";
  if (role === "service_role") return "service_role";
  return "authenticated";
}

export function isAdmin(auth: AuthContext): boolean {
  return (ADMIN_ROLES as readonly string[]).includes(auth.role);
}

/** The system itself (scheduler, worker bookkeeping): service role, no user. */
export const SYSTEM_AUTH: AuthContext = {
  role: "service_role",
  dbRole: "service_role",
  userId: null,
  email: null,
  claims: { role: "service_role" },
};

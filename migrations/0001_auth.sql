-- Roles and the auth helpers that RLS policies read.
-- Roles are cluster-wide, so creating them tolerates their existence (several databases,
-- e.g. one per test file, share one cluster).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
END
$$;

-- The server's own login must be able to SET LOCAL ROLE to each API role. A superuser
-- already can; a plain owner role (DATABASE_URL of a managed database) needs membership.
DO $$
BEGIN
  EXECUTE format('GRANT anon, authenticated, service_role TO %I', current_user);
EXCEPTION WHEN others THEN
  NULL; -- already granted, or granting to oneself as superuser: nothing to do
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

-- Claims of the current request, set per transaction with
-- set_config('request.jwt.claims', <json>, true). Missing or empty claims read as NULL.
CREATE FUNCTION auth.jwt() RETURNS jsonb
  LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb $$;

-- A user id is text: it may come from an external identity provider and need not be a UUID.
CREATE FUNCTION auth.uid() RETURNS text
  LANGUAGE sql STABLE
  AS $$ SELECT nullif(auth.jwt() ->> 'sub', '') $$;

CREATE FUNCTION auth.role() RETURNS text
  LANGUAGE sql STABLE
  AS $$ SELECT nullif(auth.jwt() ->> 'role', '') $$;

-- Roles that may read and manage every job (in addition to service_role, which bypasses RLS).
CREATE FUNCTION auth.is_admin() RETURNS boolean
  LANGUAGE sql STABLE
  AS $$ SELECT coalesce(auth.role() IN ('admin', 'dashboard_admin'), false) $$;

GRANT EXECUTE ON FUNCTION auth.jwt(), auth.uid(), auth.role(), auth.is_admin()
  TO anon, authenticated, service_role;

CREATE TABLE auth.users (
  id text PRIMARY KEY,
  email text,
  role text NOT NULL DEFAULT 'authenticated',
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can read themselves" ON auth.users FOR SELECT TO authenticated
  USING (id = auth.uid() OR auth.is_admin());
GRANT SELECT ON auth.users TO authenticated;
GRANT ALL ON auth.users TO service_role;

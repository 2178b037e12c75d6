-- The jobs schema: functions, queue, workers, execution logs, with the spec's RLS policies.
CREATE SCHEMA IF NOT EXISTS jobs;
GRANT USAGE ON SCHEMA jobs TO anon, authenticated, service_role;

CREATE TABLE jobs.functions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
  namespace text NOT NULL DEFAULT 'default' CHECK (namespace ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
  description text,
  code text NOT NULL,
  -- Sibling modules of a directory function (relative path -> source), e.g. "./lib.ts",
  -- "../_shared/db.ts", so a worker on another machine runs exactly the deployed version.
  files jsonb NOT NULL DEFAULT '{}'::jsonb,
  code_hash text NOT NULL,
  version integer NOT NULL DEFAULT 1,
  enabled boolean NOT NULL DEFAULT true,
  schedule text,
  schedule_params jsonb,
  next_run_at timestamptz,
  timeout_seconds integer NOT NULL DEFAULT 300 CHECK (timeout_seconds > 0),
  max_retries integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
  progress_timeout_seconds integer CHECK (progress_timeout_seconds > 0),
  memory_limit_mb integer CHECK (memory_limit_mb > 0),
  -- {net: true | [hosts], env: true | [names], read: true | [paths], write: ..., run: ...};
  -- a missing key grants nothing.
  permissions jsonb NOT NULL DEFAULT '{}'::jsonb,
  require_roles text[] NOT NULL DEFAULT '{}',
  source text NOT NULL DEFAULT 'api' CHECK (source IN ('filesystem', 'api', 'sync')),
  source_path text,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (namespace, name)
);

CREATE TABLE jobs.workers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  hostname text NOT NULL,
  pid integer,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'stopped', 'dead')),
  max_concurrent_jobs integer NOT NULL,
  current_job_count integer NOT NULL DEFAULT 0,
  last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz NOT NULL DEFAULT now(),
  stopped_at timestamptz
);
CREATE INDEX workers_alive_idx ON jobs.workers (last_heartbeat_at) WHERE status IN ('active', 'draining');

CREATE TABLE jobs.queue (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  function_id uuid REFERENCES jobs.functions (id) ON DELETE SET NULL,
  function_version integer,
  job_name text NOT NULL,
  namespace text NOT NULL DEFAULT 'default',
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  payload jsonb,
  priority integer NOT NULL DEFAULT 0,
  -- {percent, message, data}. Never NULL: the spec's realtime record types it as an object,
  -- and its samples read `progress.percent` on every update, the first one included.
  progress jsonb NOT NULL DEFAULT '{"percent": 0, "message": ""}'::jsonb,
  result jsonb,
  error_message text,
  logs text,
  created_by text,
  user_role text,
  user_email text,
  worker_id uuid,
  retry_count integer NOT NULL DEFAULT 0,
  max_retries integer NOT NULL DEFAULT 3,
  timeout_seconds integer,
  progress_timeout_seconds integer,
  -- When the caller asked the job to run (NULL: as soon as possible).
  scheduled_at timestamptz,
  -- When a worker may claim it next: scheduled_at at submit, now() + backoff after a failure.
  run_after timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz,
  last_progress_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Claiming: pending jobs by priority, then age. Partial, so finished jobs never bloat it.
CREATE INDEX queue_claim_idx ON jobs.queue (priority DESC, created_at, id) WHERE status = 'pending';
-- Per-user listing, newest first.
CREATE INDEX queue_created_by_idx ON jobs.queue (created_by, created_at DESC);
-- Admin listing by status. Partial on purpose: the queue's row estimates swing with every
-- batch, and with an index on status='pending' rows the planner took it for the claim and
-- sorted every pending row (measured: 11 ms per claim of 50 from 10,000 pending, against
-- 0.3 ms through queue_claim_idx, whose order is the claim's order).
CREATE INDEX queue_status_created_idx ON jobs.queue (status, created_at DESC)
  WHERE status <> 'pending';
-- Rescue and per-namespace concurrency look at running jobs only.
CREATE INDEX queue_running_idx ON jobs.queue (worker_id, namespace) WHERE status = 'running';

CREATE TABLE jobs.logs (
  id bigserial PRIMARY KEY,
  job_id uuid NOT NULL REFERENCES jobs.queue (id) ON DELETE CASCADE,
  line_number integer NOT NULL,
  level text NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warn', 'error')),
  message text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_id, line_number)
);

-- Row-level security. service_role has BYPASSRLS; its policies are stated anyway so the
-- intent reads from the schema.
ALTER TABLE jobs.queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs.functions ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs.workers ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs.logs ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users can read their own jobs" ON jobs.queue FOR SELECT TO authenticated
  USING (created_by = auth.uid());
CREATE POLICY "Users can submit jobs" ON jobs.queue FOR INSERT TO authenticated
  WITH CHECK (created_by = auth.uid());
CREATE POLICY "Users can cancel their own pending/running jobs" ON jobs.queue FOR UPDATE
  TO authenticated
  USING (created_by = auth.uid() AND status IN ('pending', 'running'))
  WITH CHECK (status = 'cancelled');
CREATE POLICY "Service role can manage all jobs" ON jobs.queue FOR ALL TO service_role
  USING (true) WITH CHECK (true);
CREATE POLICY "Admins can read all jobs" ON jobs.queue FOR SELECT TO authenticated
  USING (auth.is_admin());
-- Admin routes (cancel, terminate, retry, resubmit of anyone's job) run under the admin's
-- own claims too, so these two policies are what lets them act on other users' rows.
CREATE POLICY "Admins can manage all jobs" ON jobs.queue FOR UPDATE TO authenticated
  USING (auth.is_admin()) WITH CHECK (auth.is_admin());
CREATE POLICY "Admins can submit jobs for anyone" ON jobs.queue FOR INSERT TO authenticated
  WITH CHECK (auth.is_admin());

CREATE POLICY "Users can read logs of their own jobs" ON jobs.logs FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM jobs.queue q WHERE q.id = job_id));
CREATE POLICY "Service role can manage all logs" ON jobs.logs FOR ALL TO service_role
  USING (true) WITH CHECK (true);

-- Function code is an operator's business: only admins read or change it. Submitting a job
-- looks the function up with the server's own connection.
CREATE POLICY "Admins can manage functions" ON jobs.functions FOR ALL TO authenticated
  USING (auth.is_admin()) WITH CHECK (auth.is_admin());
CREATE POLICY "Service role can manage functions" ON jobs.functions FOR ALL TO service_role
  USING (true) WITH CHECK (true);

CREATE POLICY "Admins can read workers" ON jobs.workers FOR SELECT TO authenticated
  USING (auth.is_admin());
CREATE POLICY "Service role can manage workers" ON jobs.workers FOR ALL TO service_role
  USING (true) WITH CHECK (true);

-- anon gets SELECT so that its queries return nothing rather than a permission error.
GRANT SELECT ON jobs.queue, jobs.logs TO anon;
GRANT SELECT, INSERT, UPDATE ON jobs.queue TO authenticated;
GRANT SELECT ON jobs.logs, jobs.workers TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs.functions TO authenticated;
GRANT ALL ON ALL TABLES IN SCHEMA jobs TO service_role;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA jobs TO service_role;

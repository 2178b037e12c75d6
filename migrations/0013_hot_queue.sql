-- Claims and completions update a job's row in place (heap-only tuples, HOT).
--
-- PostgreSQL writes an update without any new index entry when no indexed column changes and the
-- row's page has room. Every claim (pending -> running) and completion (running -> completed)
-- changes `status`, which the partial indexes for claiming, running jobs and listing all named, so
-- each wrote a new entry into queue_pkey and into one or two partial indexes, and left the old
-- ones to cleanup. Now no index of jobs.queue names status, worker_id or any column a claim or a
-- completion sets, and its pages keep 60% of their room for the new versions (fillfactor 40):
--
-- - jobs.pending holds the claimable jobs: one entry per job that became pending (written by the
--   capture trigger on submit, retry, rescue and release), with the claim order's columns and the
--   two indexes the claim reads. A claim deletes the entries it takes. A job that leaves pending
--   another way (cancelled, deleted), or whose claim columns are changed by hand, leaves a stale
--   entry, which the next claim that meets it drops: it claims only rows still pending and due,
--   and looks again when it met stale entries.
-- - jobs.running_counts holds the number of running jobs per namespace and worker, kept by the
--   same trigger for every statement that moves jobs into or out of running (claim, completion,
--   failure, cancel, rescue, release, or SQL by hand). Claims read it for the namespace limit:
--   the sum of a handful of rows instead of a scan of queue_running_idx. Rows per namespace and
--   worker, and apart for started and stopped jobs, so that neither different workers nor a
--   worker's claim and its own completions wait for each other's row lock (held from the end of
--   the statement to its commit).
-- - The rescue finds the workers with running jobs in jobs.running_counts; it reads jobs.queue's
--   rows only when one of them is dead (a scan of the table, as rare as a worker's death).
-- - Listing jobs by status, which used queue_status_created_idx, scans the table. A listing
--   counts every row that matches anyway (its `total`); without the status filter it scanned
--   before.
--
-- Measured (2-core VM, PostgreSQL 18, backend CPU per job with `perf stat -e task-clock`, 10,000
-- jobs, claims of 270 and completions of 200, against 0012; docs/queue_layout.md has the rest):
-- insert 8.8-9.0 -> 9.8-10.2 us, claim 13.5-14.6 -> 8.9-10.8 us, completion 10.3-10.8 ->
-- 7.0-9.0 us.
CREATE TABLE jobs.pending (
  id uuid NOT NULL,
  namespace text NOT NULL,
  priority integer NOT NULL,
  created_at timestamptz NOT NULL,
  run_after timestamptz NOT NULL,
  -- Submitted and never claimed: it has no log lines of an earlier attempt to continue after.
  fresh boolean NOT NULL
);
-- The claim order, and per namespace for claims that must skip a namespace at its limit.
CREATE INDEX pending_claim_idx ON jobs.pending (priority DESC, created_at, id);
CREATE INDEX pending_ns_idx ON jobs.pending (namespace, priority DESC, created_at, id);

CREATE TABLE jobs.running_counts (
  namespace text NOT NULL,
  -- jobs.running_worker(): the nil UUID for running rows without a worker (written by hand).
  worker_id uuid NOT NULL,
  -- 'i': jobs that started running (claims), 'o': jobs that stopped (completions, failures,
  -- cancels, rescues, releases). Apart, so that a worker's claim, which holds the claim lock,
  -- never waits for the row lock of its own completion's commit, which waits for the disk.
  kind "char" NOT NULL CHECK (kind IN ('i', 'o')),
  n bigint NOT NULL,
  PRIMARY KEY (namespace, worker_id, kind)
);
-- The worker a running row counts under: its own, or the nil UUID for a row without one.
CREATE FUNCTION jobs.running_worker(worker_id uuid) RETURNS uuid
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT coalesce(worker_id, '00000000-0000-0000-0000-000000000000'::uuid) $$;
-- Running jobs of a namespace and worker: the started minus the stopped.
CREATE FUNCTION jobs.running_delta(c jobs.running_counts) RETURNS bigint
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT CASE WHEN c.kind = 'i' THEN c.n ELSE -c.n END $$;

GRANT SELECT ON jobs.pending, jobs.running_counts TO service_role;

INSERT INTO jobs.pending (id, namespace, priority, created_at, run_after, fresh)
  SELECT id, namespace, priority, created_at, run_after, updated_at = created_at
  FROM jobs.queue WHERE status = 'pending';
INSERT INTO jobs.running_counts (namespace, worker_id, kind, n)
  SELECT namespace, jobs.running_worker(worker_id), 'i', count(*)
  FROM jobs.queue WHERE status = 'running' GROUP BY 1, 2;

DROP INDEX jobs.queue_claim_idx;
DROP INDEX jobs.queue_pending_ns_idx;
DROP INDEX jobs.queue_status_created_idx;
DROP INDEX jobs.queue_running_idx;
-- Room on each page for a claim's and a completion's versions of its rows (new pages only; the
-- old versions are pruned from the page once no transaction can see them).
ALTER TABLE jobs.queue SET (fillfactor = 40);

-- 0003's capture function, which now also writes jobs.pending and jobs.running_counts.
CREATE OR REPLACE FUNCTION jobs.capture_queue_changes() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, jobs, realtime
  SET enable_seqscan = on SET enable_bitmapscan = on
  AS $$
  DECLARE
    n_changed bigint;
  BEGIN
    -- Running jobs counted per namespace and worker: +1 for each row that is running after the
    -- statement, -1 for each that was running before it (a row that stays running nets 0 and
    -- writes nothing); a gain is added to the worker's 'i' row, a loss to its 'o' row. The rescue
    -- deletes the rows of workers gone once they net 0.
    IF TG_OP = 'INSERT' THEN
      INSERT INTO jobs.pending (id, namespace, priority, created_at, run_after, fresh)
        SELECT n.id, n.namespace, n.priority, n.created_at, n.run_after, true
        FROM new_rows n WHERE n.status = 'pending';
      -- Wake idle workers, once per statement.
      IF FOUND THEN
        PERFORM pg_notify('fluxbase_jobs', 'inserted');
      END IF;
      INSERT INTO jobs.running_counts AS c (namespace, worker_id, kind, n)
        SELECT n.namespace, jobs.running_worker(n.worker_id), 'i', count(*)
        FROM new_rows n WHERE n.status = 'running' GROUP BY 1, 2
      ON CONFLICT (namespace, worker_id, kind) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'UPDATE' THEN
      -- Jobs that became pending again (a retry, a rescue, a release) are claimable. A pending
      -- job whose claim columns changed (by hand) gets a new entry; the old one is stale.
      INSERT INTO jobs.pending (id, namespace, priority, created_at, run_after, fresh)
        SELECT n.id, n.namespace, n.priority, n.created_at, n.run_after, false
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status = 'pending'
          AND (o.status <> 'pending'
               OR (n.namespace, n.priority, n.created_at, n.run_after)
                  IS DISTINCT FROM (o.namespace, o.priority, o.created_at, o.run_after));
      IF FOUND THEN
        PERFORM pg_notify('fluxbase_jobs', 'pending');
      END IF;
      INSERT INTO jobs.running_counts AS c (namespace, worker_id, kind, n)
        SELECT d.namespace, d.worker_id, CASE WHEN sum(d.delta) > 0 THEN 'i' ELSE 'o' END,
               abs(sum(d.delta))
        FROM (SELECT n.namespace, jobs.running_worker(n.worker_id) AS worker_id, 1 AS delta
              FROM new_rows n WHERE n.status = 'running'
              UNION ALL
              SELECT o.namespace, jobs.running_worker(o.worker_id), -1
              FROM old_rows o WHERE o.status = 'running') d
        GROUP BY 1, 2 HAVING sum(d.delta) <> 0
      ON CONFLICT (namespace, worker_id, kind) DO UPDATE SET n = c.n + excluded.n;
    ELSE
      -- A deleted pending job leaves a stale entry in jobs.pending (claims drop it).
      INSERT INTO jobs.running_counts AS c (namespace, worker_id, kind, n)
        SELECT o.namespace, jobs.running_worker(o.worker_id), 'o', count(*)
        FROM old_rows o WHERE o.status = 'running' GROUP BY 1, 2
      ON CONFLICT (namespace, worker_id, kind) DO UPDATE SET n = c.n + excluded.n;
    END IF;

    IF NOT realtime.capturing() THEN
      RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
      INSERT INTO realtime.changes (schema_name, table_name, type, record)
        SELECT 'jobs', 'queue', 'INSERT', jobs.realtime_record(n) FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
      INSERT INTO realtime.changes (schema_name, table_name, type, record, old_record)
        SELECT 'jobs', 'queue', 'UPDATE', jobs.realtime_record(n), jobs.realtime_old_record(o)
        FROM new_rows n JOIN old_rows o ON o.id = n.id;
    ELSE
      INSERT INTO realtime.changes (schema_name, table_name, type, old_record)
        SELECT 'jobs', 'queue', 'DELETE', jobs.realtime_record(o) FROM old_rows o;
    END IF;
    GET DIAGNOSTICS n_changed = ROW_COUNT;
    IF n_changed > 0 THEN
      PERFORM pg_notify('fluxbase_changes', currval('realtime.changes_id_seq')::text);
    END IF;
    RETURN NULL;
  END
  $$;

-- The entries a claim may take, in claim order, when a namespace could reach its limit: 0006's
-- ranking, on jobs.pending. While no namespace is at its limit, the first `p_limit` entries,
-- each within its namespace's room; otherwise only the namespaces with room are read (a skip scan
-- of pending_ns_idx: one index descent per namespace), never the backlog of a full one.
CREATE FUNCTION jobs.pick_ranked(p_limit integer, p_ns_limit integer)
  RETURNS TABLE (ptid tid, id uuid)
  LANGUAGE plpgsql STABLE
  SET enable_seqscan = off SET enable_bitmapscan = off SET plan_cache_mode = force_generic_plan
  AS $$
  #variable_conflict use_column
  DECLARE
    v_ns text[];
    v_n integer[];
    v_full boolean;
  BEGIN
    SELECT coalesce(array_agg(c.namespace), '{}'), coalesce(array_agg(c.n), '{}'),
           coalesce(bool_or(c.n >= p_ns_limit), false)
      INTO v_ns, v_n, v_full
      FROM (SELECT r.namespace, sum(jobs.running_delta(r))::int AS n FROM jobs.running_counts r
            GROUP BY r.namespace) c;
    IF NOT v_full THEN
      RETURN QUERY
      WITH first AS (
        SELECT p.ctid AS ptid, p.id, p.namespace, p.priority, p.created_at FROM jobs.pending p
        WHERE p.run_after <= now()
        ORDER BY p.priority DESC, p.created_at, p.id
        LIMIT p_limit
      ), ranked AS (
        SELECT f.ptid, f.id, f.priority, f.created_at, row_number() OVER (
                 PARTITION BY f.namespace ORDER BY f.priority DESC, f.created_at, f.id) AS rn,
               coalesce((SELECT r.n FROM unnest(v_ns, v_n) AS r(namespace, n)
                         WHERE r.namespace = f.namespace), 0) AS n
        FROM first f
      )
      SELECT k.ptid, k.id FROM ranked k WHERE k.n + k.rn <= p_ns_limit
      ORDER BY k.priority DESC, k.created_at, k.id;
      RETURN;
    END IF;
    RETURN QUERY
    WITH RECURSIVE pending_ns AS (
      (SELECT p.namespace FROM jobs.pending p ORDER BY p.namespace LIMIT 1)
      UNION ALL
      SELECT (SELECT p.namespace FROM jobs.pending p
              WHERE p.namespace > s.namespace ORDER BY p.namespace LIMIT 1)
      FROM pending_ns s WHERE s.namespace IS NOT NULL
    ), open_ns AS (
      SELECT s.namespace, p_ns_limit - coalesce(r.n, 0) AS room
      FROM pending_ns s
      LEFT JOIN unnest(v_ns, v_n) AS r(namespace, n) ON r.namespace = s.namespace
      WHERE s.namespace IS NOT NULL AND p_ns_limit - coalesce(r.n, 0) > 0
    ), candidates AS (
      SELECT c.ptid, c.id, c.priority, c.created_at FROM open_ns o CROSS JOIN LATERAL (
        SELECT p.ctid AS ptid, p.id, p.priority, p.created_at FROM jobs.pending p
        WHERE p.namespace = o.namespace AND p.run_after <= now()
        ORDER BY p.priority DESC, p.created_at, p.id
        LIMIT least(o.room, p_limit)
      ) c
    )
    SELECT c.ptid, c.id FROM candidates c
    ORDER BY c.priority DESC, c.created_at, c.id LIMIT p_limit;
  END
  $$;

DROP FUNCTION jobs.claim_jobs_ranked(uuid, integer, integer);

-- The claim (0010's contract): the advisory lock, the worker's row held while it is active, then
-- entries taken from jobs.pending and their rows marked running, in claim order. A row another
-- transaction is changing (a cancel) is waited for and then taken only if it is still pending.
-- Entries of rows no longer pending or not due are deleted with the others, and the claim looks
-- again for as many.
CREATE OR REPLACE FUNCTION jobs.claim_jobs(p_worker uuid, p_limit integer, p_ns_limit integer)
  RETURNS TABLE (
    id uuid, function_id uuid, function_version integer, job_name text, namespace text,
    payload jsonb, retry_count integer, max_retries integer, timeout_seconds integer,
    progress_timeout_seconds integer, created_by text, user_role text, user_email text,
    log_lines integer)
  LANGUAGE plpgsql VOLATILE
  -- One plan per statement for the connection (0011): its parameters (the entries' ctids, the
  -- worker) made small claims plan their statements again on every call.
  SET enable_seqscan = off SET enable_bitmapscan = off SET plan_cache_mode = force_generic_plan
  AS $$
  #variable_conflict use_column
  DECLARE
    v_want integer := p_limit;
    v_running bigint;
    v_tids tid[];
    v_got integer;
  BEGIN
    -- Arbitrary but fixed key: CLAIM_LOCK_KEY of src/queue/job_queries.ts.
    PERFORM pg_advisory_xact_lock(7262005002);
    PERFORM 1 FROM jobs.workers w WHERE w.id = p_worker AND w.status = 'active' FOR SHARE;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    WHILE v_want > 0 LOOP
      -- A later statement than the lock: its snapshot sees what earlier claims committed.
      SELECT coalesce(sum(jobs.running_delta(c)), 0) INTO v_running FROM jobs.running_counts c;
      IF v_running + v_want <= p_ns_limit THEN
        -- No namespace can reach its limit with this claim, whatever it takes: no ranking.
        v_tids := ARRAY(SELECT p.ctid FROM jobs.pending p WHERE p.run_after <= now()
                        ORDER BY p.priority DESC, p.created_at, p.id LIMIT v_want);
      ELSE
        v_tids := ARRAY(SELECT p.ptid FROM jobs.pick_ranked(v_want, p_ns_limit) p);
      END IF;
      EXIT WHEN cardinality(v_tids) = 0;
      RETURN QUERY
      WITH taken AS (
        DELETE FROM jobs.pending p WHERE p.ctid = ANY (v_tids) RETURNING p.id, p.fresh
      ), claimed AS (
        UPDATE jobs.queue q
        SET status = 'running', worker_id = p_worker, started_at = now(),
            last_progress_at = now(), completed_at = NULL, updated_at = now()
        FROM taken k
        WHERE q.id = k.id AND q.status = 'pending' AND q.run_after <= now()
        RETURNING q.id, q.function_id, q.function_version, q.job_name, q.namespace, q.payload,
          q.retry_count, q.max_retries, q.timeout_seconds, q.progress_timeout_seconds,
          q.created_by, q.user_role, q.user_email,
          CASE WHEN k.fresh THEN 0 ELSE
            (SELECT coalesce(max(g.line_number), 0) FROM jobs.logs g WHERE g.job_id = q.id)::int
          END AS log_lines,
          q.priority, q.created_at
      )
      SELECT c.id, c.function_id, c.function_version, c.job_name, c.namespace, c.payload,
        c.retry_count, c.max_retries, c.timeout_seconds, c.progress_timeout_seconds,
        c.created_by, c.user_role, c.user_email, c.log_lines
      FROM claimed c ORDER BY c.priority DESC, c.created_at, c.id;
      GET DIAGNOSTICS v_got = ROW_COUNT;
      -- Fewer rows than entries: some were stale (and are gone now); look for the rest.
      EXIT WHEN v_got = cardinality(v_tids);
      v_want := v_want - v_got;
    END LOOP;
  END
  $$;

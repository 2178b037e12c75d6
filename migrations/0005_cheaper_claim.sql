-- A cheaper claim, same guarantees (src/queue/job_queries.ts, jobClaimAvailable). Figures are
-- PostgreSQL instructions per claimed job (callgrind, deterministic), submit + claim +
-- completion in batches of 50 after a warm-up: claim 123.3k -> 111.9k (2,000 jobs without an
-- owner), 153.3k -> 145.2k (2,000 with owners), 117.3k -> 107.2k (1,000 above 5,000 pending
-- ones). The completion is unchanged on average: it moved by up to 6k either way with the run's
-- size, as queue_pkey's bottom-up deletion passes shift (the old claim's pkey lookups marked
-- some dead entries on their way). In all 305k -> 293k, 372k -> 363k, 306k -> 296k per job.
--
-- 1. The UPDATE finds the rows it claims by the ctid the locking scan read, not through
--    queue_pkey again (claim -4k to -8k per job). The rows are still locked (FOR UPDATE SKIP
--    LOCKED) before the UPDATE reads them, so nobody changes them in between, and the ctid of a
--    row version visible to the statement's snapshot is not reused while that snapshot lives. A
--    row changed by a transaction that committed after the snapshot but before the lock is
--    re-checked by the lock against the claim's conditions: if it no longer qualifies it is not
--    returned; if it does, its newest version is locked, and the UPDATE either updates it (after
--    the same re-check) or, not seeing it by that ctid, leaves it pending for the next claim.
--
-- 2. log_lines is only looked up for a job that was claimed before (claim -4k per job).
--    Lines are written by the worker holding a job (src/queue/log_queries.ts), so a job never
--    claimed has none. An inserted job's created_at and updated_at are the same now() (both
--    defaults); a job that was claimed has since been given back to pending (release, failure,
--    rescue), which sets updated_at = now() of a transaction that began after the insert
--    committed, so later than created_at. So updated_at = created_at on a pending job means
--    never claimed, and 0 lines; any other job is looked up in jobs.logs as before. (Not
--    retry_count = 0 or started_at IS NULL: a job released at shutdown keeps the one and loses
--    the other, and may have logged.)
--
-- Kept: the row lock. Without it (claim -3.9k per job, measured) the UPDATE would have to
-- re-check status and run_after itself and would wait on a row another transaction is
-- changing, holding the claim lock and the rows it has updated so far; deleting a function
-- updates its pending jobs (ON DELETE SET NULL) in heap order, so such a claim and a function
-- delete could deadlock. SKIP LOCKED never waits.
--
-- Tried and not kept (1,000 jobs without an owner, 305k in all with 1. alone): fillfactor 50 or
-- 80 on jobs.queue (claims cheaper, completions dearer: 309k and 312k), one partial index per
-- finished status instead of queue_status_created_idx (completion 114k -> 127k).
CREATE OR REPLACE FUNCTION jobs.claim_jobs(p_worker uuid, p_limit integer, p_ns_limit integer)
  RETURNS TABLE (
    id uuid, function_id uuid, function_version integer, job_name text, namespace text,
    payload jsonb, retry_count integer, max_retries integer, timeout_seconds integer,
    progress_timeout_seconds integer, created_by text, user_role text, user_email text,
    log_lines integer)
  LANGUAGE plpgsql VOLATILE
  SET enable_seqscan = off SET enable_bitmapscan = off
  AS $$
  #variable_conflict use_column
  BEGIN
    -- Arbitrary but fixed key: CLAIM_LOCK_KEY of src/queue/job_queries.ts.
    PERFORM pg_advisory_xact_lock(7262005002);
    RETURN QUERY
    WITH running AS (
      SELECT r.namespace, count(*)::int AS n FROM jobs.queue r
      WHERE r.status = 'running' GROUP BY r.namespace
    ), locked AS (
      SELECT q.ctid AS tid, q.id, q.namespace, q.priority, q.created_at,
             q.updated_at = q.created_at AS fresh FROM jobs.queue q
      WHERE q.status = 'pending' AND q.run_after <= now()
        -- A worker declared dead (or stopped) claims nothing, even before it notices.
        AND EXISTS (SELECT 1 FROM jobs.workers w WHERE w.id = p_worker AND w.status = 'active')
        AND q.namespace <> ALL(ARRAY(SELECT f.namespace FROM running f WHERE f.n >= p_ns_limit))
      ORDER BY q.priority DESC, q.created_at, q.id
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    ), ranked AS (
      SELECT l.tid, l.fresh, row_number() OVER (
               PARTITION BY l.namespace ORDER BY l.priority DESC, l.created_at, l.id) AS rn,
             coalesce((SELECT r.n FROM running r WHERE r.namespace = l.namespace), 0) AS n
      FROM locked l
    )
    UPDATE jobs.queue q
    SET status = 'running', worker_id = p_worker, started_at = now(),
        last_progress_at = now(), completed_at = NULL, updated_at = now()
    FROM ranked k
    WHERE q.ctid = k.tid AND k.n + k.rn <= p_ns_limit
    RETURNING q.id, q.function_id, q.function_version, q.job_name, q.namespace, q.payload,
      q.retry_count, q.max_retries, q.timeout_seconds, q.progress_timeout_seconds,
      q.created_by, q.user_role, q.user_email,
      -- Never claimed (point 2 above): no earlier attempt, no lines.
      CASE WHEN k.fresh THEN 0 ELSE
        (SELECT coalesce(max(g.line_number), 0) FROM jobs.logs g WHERE g.job_id = q.id)::int END;
  END
  $$;
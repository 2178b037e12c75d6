-- A claim holds its worker's row (FOR SHARE) from the check that the worker is active to the end
-- of the claim.
--
-- 0009 checked `status = 'active'` in one statement and claimed in the next, each with its own
-- snapshot: a worker declared dead between the two (a rescue, or an administrator) could still
-- take jobs that became pending meanwhile, including the jobs the rescue had just returned to
-- pending, which then ran on a worker about to be recycled (tests/engine_recovery_test.ts, "a
-- worker declared dead stops its jobs", failed so twice). Now the status change waits for a claim
-- in flight, and a claim that starts after it sees the worker dead.
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
  DECLARE
    v_running integer;
  BEGIN
    -- Arbitrary but fixed key: CLAIM_LOCK_KEY of src/queue/job_queries.ts.
    PERFORM pg_advisory_xact_lock(7262005002);
    -- A worker declared dead (or stopped) claims nothing, even before it notices. The row lock
    -- holds its status until the claim commits: a rescue declaring it dead meanwhile waits, and
    -- then finds the jobs this claim took.
    PERFORM 1 FROM jobs.workers w WHERE w.id = p_worker AND w.status = 'active' FOR SHARE;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    -- All running jobs, counted only as far as the limit needs. Not counted at all when the size
    -- of queue_running_idx already shows they fit: every running job has an entry there, and an
    -- entry takes at least 6 bytes of the index (a heap pointer in a deduplicated posting list).
    IF pg_relation_size('jobs.queue_running_idx') / 6 + p_limit <= p_ns_limit THEN
      v_running := 0;
    ELSE
      SELECT count(*)::int INTO v_running
        FROM (SELECT FROM jobs.queue r WHERE r.status = 'running'
              LIMIT greatest(p_ns_limit - p_limit, 0)::bigint + 1) c;
    END IF;
    -- In bigint: a limit or a claim may be as large as an int4 (src/queue/job_queries.ts).
    IF v_running::bigint + p_limit > p_ns_limit THEN
      RETURN QUERY SELECT * FROM jobs.claim_jobs_ranked(p_worker, p_limit, p_ns_limit);
      RETURN;
    END IF;

    -- No namespace can reach its limit with this claim, whatever it takes: no ranking.
    RETURN QUERY
    WITH locked AS (
      SELECT q.ctid AS tid, q.updated_at = q.created_at AS fresh FROM jobs.queue q
      WHERE q.status = 'pending' AND q.run_after <= now()
      ORDER BY q.priority DESC, q.created_at, q.id
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs.queue q
    SET status = 'running', worker_id = p_worker, started_at = now(),
        last_progress_at = now(), completed_at = NULL, updated_at = now()
    FROM locked k
    WHERE q.ctid = k.tid
    RETURNING q.id, q.function_id, q.function_version, q.job_name, q.namespace, q.payload,
      q.retry_count, q.max_retries, q.timeout_seconds, q.progress_timeout_seconds,
      q.created_by, q.user_role, q.user_email,
      CASE WHEN k.fresh THEN 0 ELSE
        (SELECT coalesce(max(g.line_number), 0) FROM jobs.logs g WHERE g.job_id = q.id)::int END;
  END
  $$;

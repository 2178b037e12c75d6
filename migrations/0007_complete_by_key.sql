-- Completions and progress updates reach their rows by primary key.
--
-- Before, a batch was joined with unnest(ids, results, ...) and the planner, which cannot see
-- how long the arrays are, chose a hash join fed by queue_running_idx: every completion batch
-- read all the running jobs of its worker (with a local queue, up to 5 times the batch), and
-- the join carried a whole-row copy of each array row for EvalPlanQual.
-- Now each statement is one index scan of queue_pkey with `id = ANY(ids)`, and the values are
-- looked up in JSON objects keyed by job id (a binary search in a jsonb object). PostgreSQL
-- instructions per completed job (callgrind, batches of 50 with 200 more jobs running on the
-- worker, bench/ harness of the previous migrations): completion 104.8k -> 89.2k.
--
-- The guard `CASE WHEN status = 'running' THEN worker_id END = p_worker` means exactly
-- `status = 'running' AND worker_id = p_worker`, written so that it matches no index: with the
-- plain form the planner may walk queue_running_idx (all of the worker's running jobs) and
-- filter by id, the cost this migration removes. It is a qual on the target row, so a row
-- changed meanwhile by another transaction (a cancel, a rescue, this worker's own progress
-- writer) is re-checked on its newest version (EvalPlanQual), as before.
--
-- Functions, not statements sent by the client: they keep their plan for the connection, and
-- their SET clauses hold the planner to the index (a client statement with the same text
-- measured 220k, with a sequential scan).
--
-- p_results, p_progress, p_logs: JSON objects {job id: value}; a job without a key has a
-- null result, keeps its progress (and last_progress_at), gets no log text. A null object is
-- the same as an empty one.
CREATE OR REPLACE FUNCTION jobs.complete_jobs(
    p_worker uuid, p_ids uuid[], p_results jsonb, p_progress jsonb, p_logs jsonb)
  RETURNS SETOF uuid
  LANGUAGE plpgsql VOLATILE
  SET enable_seqscan = off SET enable_bitmapscan = off
  AS $$
  BEGIN
    IF p_progress IS NULL AND p_logs IS NULL THEN
      -- The common batch, results only: 80.7k instructions per job against 83.7k for the
      -- general statement below (callgrind, batches of 50, with migrations up to 0009).
      RETURN QUERY
      UPDATE jobs.queue q
      SET status = 'completed', result = p_results -> q.id::text,
          completed_at = now(), updated_at = now()
      WHERE q.id = ANY(p_ids) AND CASE WHEN q.status = 'running' THEN q.worker_id END = p_worker
      RETURNING q.id;
      RETURN;
    END IF;
    RETURN QUERY
    UPDATE jobs.queue q
    SET status = 'completed', result = p_results -> q.id::text,
        completed_at = now(), updated_at = now(),
        progress = coalesce(p_progress -> q.id::text, q.progress),
        last_progress_at = CASE WHEN p_progress ? q.id::text THEN now()
                                ELSE q.last_progress_at END,
        logs = CASE WHEN p_logs ? q.id::text THEN coalesce(q.logs, '') || (p_logs ->> q.id::text)
                    ELSE q.logs END
    WHERE q.id = ANY(p_ids) AND CASE WHEN q.status = 'running' THEN q.worker_id END = p_worker
    RETURNING q.id;
  END
  $$;

-- The latest coalesced progress of running jobs: p_progress as above.
CREATE OR REPLACE FUNCTION jobs.progress_jobs(p_worker uuid, p_ids uuid[], p_progress jsonb)
  RETURNS void
  LANGUAGE plpgsql VOLATILE
  SET enable_seqscan = off SET enable_bitmapscan = off
  AS $$
  BEGIN
    UPDATE jobs.queue q
    SET progress = p_progress -> q.id::text, last_progress_at = now(), updated_at = now()
    WHERE q.id = ANY(p_ids) AND CASE WHEN q.status = 'running' THEN q.worker_id END = p_worker
      AND p_progress ? q.id::text;
  END
  $$;

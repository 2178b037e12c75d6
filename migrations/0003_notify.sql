-- Change capture for realtime and wake-ups for workers.
--
-- Realtime: statement-level triggers copy each changed job row (without its payload, which
-- can be 1 MiB and is not part of the realtime record) into realtime.changes, then send one
-- NOTIFY 'fluxbase_changes' carrying only the highest change id. The hub reads rows after the
-- last id it has seen. So a row of any size arrives whole (pg_notify fails above 8000 bytes),
-- a batch of 50 completions costs one insert and one notify, the event is the row as
-- committed (deletes included), and a hub that lost its connection can catch up by id.
CREATE SCHEMA IF NOT EXISTS realtime;

-- UNLOGGED: change rows are a short-lived feed, not data; losing them on a crash only means
-- subscribers refetch, which they are told to do after any gap.
CREATE UNLOGGED TABLE realtime.changes (
  id bigserial PRIMARY KEY,
  commit_timestamp timestamptz NOT NULL DEFAULT now(),
  schema_name text NOT NULL,
  table_name text NOT NULL,
  type text NOT NULL CHECK (type IN ('INSERT', 'UPDATE', 'DELETE')),
  record jsonb,
  old_record jsonb
);
-- No index on commit_timestamp: the retention cleanup walks the primary key from the oldest id
-- (src/realtime/listener.ts), and every index here is paid for by every captured row.

-- The realtime record of a job: every field of the spec's RealtimeJobUpdate.new.
CREATE FUNCTION jobs.realtime_record(q jobs.queue) RETURNS jsonb
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT jsonb_build_object(
      'id', q.id, 'job_name', q.job_name, 'namespace', q.namespace, 'status', q.status,
      'progress', q.progress, 'created_at', q.created_at, 'started_at', q.started_at,
      'completed_at', q.completed_at, 'last_progress_at', q.last_progress_at,
      'scheduled_at', q.scheduled_at, 'priority', q.priority,
      'result', q.result, 'error_message', q.error_message, 'logs', q.logs,
      'created_by', q.created_by, 'user_role', q.user_role, 'user_email', q.user_email,
      'worker_id', q.worker_id, 'retry_count', q.retry_count, 'max_retries', q.max_retries)
  $$;

-- old_record: what an update changed from, as the realtime contract promises it (id, status,
-- progress). Building the full record twice per updated row made change capture cost as much
-- as the claim and completion themselves (measured with the capture: claim + complete of 50
-- from 10,000 pending 3,500 jobs/s with the full old record and the commit_timestamp index,
-- 4,250 jobs/s with this; 7,000 without capture).
CREATE FUNCTION jobs.realtime_old_record(q jobs.queue) RETURNS jsonb
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT jsonb_build_object('id', q.id, 'status', q.status, 'progress', q.progress) $$;

-- Capture only while someone watches: a realtime hub with table subscribers keeps a row in
-- realtime.presence alive; without any, the triggers skip writing realtime.changes, which
-- nobody would read (measured: the jobs bench went from ~2,900 to ~3,650 jobs/s with update
-- capture off). Worker wake-ups (NOTIFY fluxbase_jobs) are sent either way.
CREATE UNLOGGED TABLE realtime.presence (
  hub_id uuid PRIMARY KEY,
  active_until timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON realtime.presence TO service_role;

CREATE FUNCTION realtime.capturing() RETURNS boolean
  LANGUAGE sql STABLE
  AS $$ SELECT EXISTS (SELECT 1 FROM realtime.presence WHERE active_until > now()) $$;

-- The capture function pins enable_seqscan/enable_bitmapscan on: the worker's claim turns them
-- off for its own statement (src/queue/job_queries.ts), and planning the triggers' queries on
-- transition tables with them off took 15-190 ms per call instead of ~1 ms (measured).
-- One function for the three triggers below; a statement naming a transition table is only
-- planned in the branch of the trigger that declares it.
CREATE FUNCTION jobs.capture_queue_changes() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, jobs, realtime
  SET enable_seqscan = on SET enable_bitmapscan = on
  AS $$
  DECLARE n_changed bigint;
  BEGIN
    -- Wake idle workers, once per statement: jobs were inserted, or a job became pending
    -- again (a retry) and may be claimable.
    IF TG_OP = 'INSERT' THEN
      IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
      END IF;
      PERFORM pg_notify('fluxbase_jobs', 'inserted');
    ELSIF TG_OP = 'UPDATE' THEN
      -- Nested, not `AND`: a condition is planned whole, and a DELETE has no new_rows.
      IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
                 WHERE n.status = 'pending' AND o.status <> 'pending') THEN
        PERFORM pg_notify('fluxbase_jobs', 'pending');
      END IF;
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

-- Transition tables allow one event per trigger, hence three triggers.
CREATE TRIGGER queue_capture_insert AFTER INSERT ON jobs.queue
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.capture_queue_changes();
CREATE TRIGGER queue_capture_update AFTER UPDATE ON jobs.queue
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION jobs.capture_queue_changes();
CREATE TRIGGER queue_capture_delete AFTER DELETE ON jobs.queue
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.capture_queue_changes();

-- A running job that was cancelled: tell the worker holding it (payload "<job id>:<worker id>").
CREATE FUNCTION jobs.notify_running_cancelled() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  BEGIN
    PERFORM pg_notify('fluxbase_cancel', NEW.id::text || ':' || coalesce(OLD.worker_id::text, ''));
    RETURN NULL;
  END
  $$;
CREATE TRIGGER queue_notify_cancel AFTER UPDATE OF status ON jobs.queue
  FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status = 'cancelled')
  EXECUTE FUNCTION jobs.notify_running_cancelled();

-- Execution log lines stream to realtime too (subscribe_logs): notify the ids written.
CREATE FUNCTION jobs.notify_logs_insert() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  DECLARE max_id bigint;
  BEGIN
    SELECT max(id) INTO max_id FROM new_rows;
    IF max_id IS NOT NULL THEN
      PERFORM pg_notify('fluxbase_logs', max_id::text);
    END IF;
    RETURN NULL;
  END
  $$;
CREATE TRIGGER logs_notify_insert AFTER INSERT ON jobs.logs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.notify_logs_insert();

GRANT USAGE ON SCHEMA realtime TO service_role;
GRANT SELECT, DELETE ON realtime.changes TO service_role;

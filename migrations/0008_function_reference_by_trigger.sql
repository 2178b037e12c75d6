-- jobs.queue.function_id without a foreign key; deleting a function still clears it.
--
-- The foreign key checked every inserted job against jobs.functions with a query of its own
-- (a plan started per row, and a KEY SHARE lock on the function's row): 34k of the 95k
-- PostgreSQL instructions an inserted job cost (callgrind, 1,000 jobs inserted in one
-- statement). Submitting reads the function anyway (src/jobs/submit.ts), so the check only
-- guarded against a function deleted between that read and the insert.
--
-- What the key's ON DELETE SET NULL did, the trigger below does: deleting functions sets
-- function_id to NULL on their jobs, so a job of a deleted function that has not started fails
-- with "Function ... no longer exists" and is not retried (src/worker/job_worker.ts). It runs
-- as the owner, as the key's action did, whoever deletes (an admin under RLS).
--
-- The case the key refused and this allows: a job inserted while its function is deleted, by
-- a transaction that commits after the delete's, keeps the id of the function it was
-- submitted for. A worker that finds no function with that id fails the job in the same way;
-- one that still holds that function's code from an earlier job runs it, the code that was
-- deployed when the job was accepted.
ALTER TABLE jobs.queue DROP CONSTRAINT queue_function_id_fkey;

CREATE FUNCTION jobs.forget_deleted_functions() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$
  BEGIN
    UPDATE jobs.queue q SET function_id = NULL
    WHERE q.function_id IN (SELECT d.id FROM deleted_functions d);
    RETURN NULL;
  END
  $$;

CREATE TRIGGER functions_forget_deleted AFTER DELETE ON jobs.functions
  REFERENCING OLD TABLE AS deleted_functions
  FOR EACH STATEMENT EXECUTE FUNCTION jobs.forget_deleted_functions();

-- Completions and progress updates keep one generic plan for the connection.
--
-- Their statement's parameters (the ids, the JSON objects) made PostgreSQL's plan cache try a
-- custom plan first and, for small batches, keep choosing one: the statement was planned again on
-- every call. Plans are index scans of queue_pkey either way (the functions hold the planner to
-- indexes), so a generic plan loses nothing. PostgreSQL instructions per completed job (callgrind,
-- bench/ harness): batches of 3, as the default layout of 4 workers of 5 slots makes them,
-- 260k -> 201k; batches of 50, 80.7k -> 80.8k (unchanged). The claim functions are left as they
-- are: the setting did not change their cost (294k per job in claims of 3 either way).
-- The default layout in bench/jobs.ts's loop (a scratch copy: 4 workers of 5 slots, namespace
-- limit 20, no local queue, 5,000 jobs in 3 rounds, 2 interleaved pairs): 875-1,082 -> 1,275-1,564
-- jobs/s, PostgreSQL CPU per job 842-1,004 us -> 482-684 us.
ALTER FUNCTION jobs.complete_jobs(uuid, uuid[], jsonb, jsonb, jsonb)
  SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION jobs.progress_jobs(uuid, uuid[], jsonb)
  SET plan_cache_mode = force_generic_plan;

-- Job ids are time-ordered UUIDs (version 7, RFC 9562) instead of random ones (version 4).
--
-- A random key lands each new job, and each new row version a claim or a completion writes, on a
-- random leaf of queue_pkey; time-ordered keys keep them on the few rightmost leaves, which stay
-- hot in cache and take PostgreSQL's fast path for appending to a B-tree. PostgreSQL backend CPU
-- per job, 10,000 jobs, claims of 270 and completions of 200 (`perf stat -e task-clock` on the
-- backend, median of 3 after a warm-up): insert 10.4 -> 8.9 us, claim 16.0 -> 15.2 us,
-- completion 13.2 -> 10.2 us.
--
-- Ids stay UUIDs, so nothing that reads them changes; they now also reveal when the job was
-- created, which `created_at` shows anyway to anyone who can see the job. Existing jobs keep
-- their ids.
--
-- PostgreSQL 18 has uuidv7() (monotonic within a backend, with sub-millisecond precision). On
-- older servers (the spec allows any PostgreSQL with RLS; Debian's 15, for example) the same
-- layout is built from gen_random_uuid(): the first 48 bits become the Unix time in
-- milliseconds and the version nibble becomes 7; the variant bits of the v4 UUID are already
-- RFC 9562's.
CREATE FUNCTION jobs.uuid_v7_portable() RETURNS uuid
  LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$
    SELECT encode(
      set_bit(set_bit(
        overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                                  FROM 3)
                FROM 1 FOR 6),
        52, 1), 53, 1),
      'hex')::uuid
  $$;

DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 180000 THEN
    ALTER TABLE jobs.queue ALTER COLUMN id SET DEFAULT uuidv7();
  ELSE
    ALTER TABLE jobs.queue ALTER COLUMN id SET DEFAULT jobs.uuid_v7_portable();
  END IF;
END
$$;

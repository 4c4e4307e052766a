-- The demo table of the source Impala cluster, which the example DAG reads by default
-- (SELECT * FROM default.events, split_by id). Run by the source-seed service of
-- docker-compose.yaml; idempotent: a second run replaces the rows with the same 1,000,000 (ids 0 to
-- 999,999: four chunks at the DAG's default chunk_size of 250,000).
--
-- The rows carry what a transfer must keep exact: sub-second timestamps, DECIMAL(12,2), NULLs in
-- INT and DECIMAL columns, strings.

CREATE TABLE IF NOT EXISTS default.digits (d INT) STORED AS PARQUET;

INSERT OVERWRITE TABLE default.digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);

CREATE TABLE IF NOT EXISTS default.events (
  id BIGINT,
  event_time TIMESTAMP,
  user_id INT,
  amount DECIMAL(12,2),
  category STRING,
  payload STRING
) STORED AS PARQUET;

INSERT OVERWRITE TABLE default.events
SELECT n AS id,
       milliseconds_add(seconds_add(CAST('2026-01-01 00:00:00' AS TIMESTAMP), n), n % 1000) AS event_time,
       CASE WHEN n % 97 = 0 THEN NULL ELSE CAST(n % 5000 AS INT) END AS user_id,
       CASE WHEN n % 89 = 0 THEN NULL ELSE CAST((n % 100000) / 100 AS DECIMAL(12,2)) END AS amount,
       CASE n % 4 WHEN 0 THEN 'view' WHEN 1 THEN 'click' WHEN 2 THEN 'cart' ELSE 'purchase' END AS category,
       concat('event ', CAST(n AS STRING)) AS payload
FROM (
  SELECT CAST(a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS BIGINT) AS n
  FROM default.digits a
  CROSS JOIN default.digits b
  CROSS JOIN default.digits c
  CROSS JOIN default.digits e
  CROSS JOIN default.digits f
  CROSS JOIN default.digits g
) numbers;

COMPUTE STATS default.events;

SELECT COUNT(*) AS events_rows, COUNT(user_id) AS with_user, MIN(event_time), MAX(event_time) FROM default.events;

WITH traces AS 
(SELECT count(*) AS trace_count, CAST(CAST(sum(CAST(fact_traces.latency_ms AS NUMERIC(38, 9))) AS TEXT) AS DOUBLE PRECISION) / nullif(CAST(count(fact_traces.latency_ms) AS DOUBLE PRECISION), 0) AS avg_trace_latency_ms 
FROM fact_traces 
WHERE fact_traces.trace_id IN (SELECT matching.trace_id 
FROM fact_traces AS matching LEFT OUTER JOIN bridge_trace_practices AS practice ON practice.trace_id = matching.trace_id 
WHERE (practice.practice NOT IN ('dry-run')) OR practice.practice IS NULL))
 SELECT traces.trace_count AS trace_count, traces.avg_trace_latency_ms AS avg_trace_latency_ms 
FROM traces

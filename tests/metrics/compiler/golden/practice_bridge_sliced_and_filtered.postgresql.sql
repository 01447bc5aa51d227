WITH traces AS 
(SELECT practice.practice AS practice, count(*) AS trace_count 
FROM fact_traces LEFT OUTER JOIN bridge_trace_practices AS practice ON practice.trace_id = fact_traces.trace_id 
WHERE fact_traces.safety_level = 'critical' OR practice.practice LIKE 'least%' ESCAPE '\' GROUP BY 1), 
practice_steps AS 
(SELECT bridge_trace_practices.practice AS practice, CAST(sum(bridge_trace_practices.step_count) AS BIGINT) AS practice_recommendation_count 
FROM bridge_trace_practices 
WHERE bridge_trace_practices.safety_level = 'critical' OR bridge_trace_practices.practice LIKE 'least%' ESCAPE '\' GROUP BY 1), 
dimension_rows AS 
(SELECT traces.practice AS practice 
FROM traces UNION SELECT practice_steps.practice AS practice 
FROM practice_steps)
 SELECT dimension_rows.practice AS practice, coalesce(traces.trace_count, 0) AS trace_count, coalesce(practice_steps.practice_recommendation_count, 0) AS practice_recommendation_count 
FROM dimension_rows LEFT OUTER JOIN traces ON dimension_rows.practice IS NOT DISTINCT FROM traces.practice LEFT OUTER JOIN practice_steps ON dimension_rows.practice IS NOT DISTINCT FROM practice_steps.practice ORDER BY (dimension_rows.practice COLLATE "C") ASC NULLS LAST

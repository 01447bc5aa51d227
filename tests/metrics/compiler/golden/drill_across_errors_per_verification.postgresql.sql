WITH errors AS 
(SELECT agent.agent_type AS agent__type, count(*) AS error_count 
FROM fact_errors LEFT OUTER JOIN dim_agent AS agent ON agent.agent_key = fact_errors.agent_key AND fact_errors.occurred_at >= agent.valid_from AND fact_errors.occurred_at < agent.valid_to GROUP BY 1), 
verifications AS 
(SELECT agent.agent_type AS agent__type, count(*) AS verification_count 
FROM fact_verifications LEFT OUTER JOIN dim_agent AS agent ON agent.agent_key = fact_verifications.agent_key AND fact_verifications.created_at >= agent.valid_from AND fact_verifications.created_at < agent.valid_to GROUP BY 1), 
dimension_rows AS 
(SELECT errors.agent__type AS agent__type 
FROM errors UNION SELECT verifications.agent__type AS agent__type 
FROM verifications)
 SELECT dimension_rows.agent__type AS agent__type, CAST(coalesce(errors.error_count, 0) AS DOUBLE PRECISION) / CAST(nullif(CAST(coalesce(verifications.verification_count, 0) AS DOUBLE PRECISION), 0) AS DOUBLE PRECISION) AS errors_per_verification, coalesce(errors.error_count, 0) AS error_count, coalesce(verifications.verification_count, 0) AS verification_count 
FROM dimension_rows LEFT OUTER JOIN errors ON dimension_rows.agent__type IS NOT DISTINCT FROM errors.agent__type LEFT OUTER JOIN verifications ON dimension_rows.agent__type IS NOT DISTINCT FROM verifications.agent__type ORDER BY (dimension_rows.agent__type COLLATE "C") ASC NULLS LAST

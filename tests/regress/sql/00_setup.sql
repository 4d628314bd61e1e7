-- Shared by the regress files: hide what changes from run to run (timestamps, minted run ids).
CREATE FUNCTION show(j jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(j)
    WHEN 'object' THEN (
      SELECT coalesce(jsonb_object_agg(k, CASE WHEN (k ~ 'At$' OR k = 'at') AND k NOT IN ('resumeAt', 'retryAfter') AND jsonb_typeof(v) = 'string'
                                                THEN '"<time>"'::jsonb ELSE show(v) END), '{}')
      FROM jsonb_each(j) AS e(k, v))
    WHEN 'array' THEN (
      SELECT coalesce(jsonb_agg(show(v) ORDER BY i), '[]') FROM jsonb_array_elements(j) WITH ORDINALITY AS a(v, i))
    WHEN 'string' THEN
      CASE WHEN j #>> '{}' ~ '^wrun_[0-9A-HJKMNP-TV-Z]{26}$' THEN '"wrun_<minted>"'::jsonb ELSE j END
    ELSE j
  END
$$;
SELECT label FROM workflow.applications ORDER BY application_id;

-- The workflow schema as a sorted list of lines: every function (owner, privileges, definition
-- hash), relation, column, index, constraint, policy, view and extension member. Two databases
-- with the same lines have the same pgworld catalog. Triggers and the tables pg_dump carries too.
SELECT 'fn ' || p.oid::regprocedure || ' owner=' || p.proowner::regrole || ' acl=' || coalesce(p.proacl::text, '') || ' ' || md5(regexp_replace(pg_get_functiondef(p.oid), '\s+', ' ', 'g'))
  FROM pg_proc p WHERE p.pronamespace = 'workflow'::regnamespace
UNION ALL
SELECT 'rel ' || c.oid::regclass || ' kind=' || c.relkind::text || ' owner=' || c.relowner::regrole || ' acl=' || coalesce(c.relacl::text, '') || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity || ' opts=' || coalesce(c.reloptions::text, '')
  FROM pg_class c WHERE c.relnamespace = 'workflow'::regnamespace
UNION ALL
SELECT 'col ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' identity=' || a.attidentity::text
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'workflow'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'idx ' || regexp_replace(indexdef, '\s+', ' ', 'g') FROM pg_indexes WHERE schemaname = 'workflow'
UNION ALL
SELECT 'con ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'workflow'::regnamespace
UNION ALL
SELECT 'pol ' || tablename || ' ' || policyname || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies WHERE schemaname = 'workflow'
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c WHERE c.relnamespace = 'workflow'::regnamespace AND c.relkind = 'v'
UNION ALL
SELECT 'trg ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'workflow'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'dump ' || x::regclass FROM pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'pgworld'
UNION ALL
SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e' AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgworld')
ORDER BY 1;

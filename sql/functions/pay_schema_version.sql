-- The schema's version: the number of the last migration applied (the NNN
-- of schema_migrations' NNN_name.sql).  /readyz compares it with the
-- number the module was built for and says 503 while it is older.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_schema_version()
 RETURNS integer
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (SELECT coalesce(max(substr(m.version, 1, 3)::integer), 0)
              FROM schema_migrations m WHERE m.version ~ '^[0-9]{3}_');
END
$function$;
REVOKE ALL ON FUNCTION pay_schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_schema_version() TO payments_gateway;

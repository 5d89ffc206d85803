CREATE OR REPLACE FUNCTION pay_executing_stats()
 RETURNS TABLE(executing bigint, oldest_seconds bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT count(*),
           coalesce(floor(extract(epoch FROM now() - min(c.created_at)))::bigint, 0)
      FROM checkouts c
     WHERE c.status = 'EXECUTING';
$function$;
REVOKE ALL ON FUNCTION pay_executing_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_executing_stats() TO payments_gateway;

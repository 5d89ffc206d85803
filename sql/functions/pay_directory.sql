-- The gateways' directory of this shard (merchant -> shard, key id ->
-- merchant), read by the worker that polls the shard: every merchant
-- placed here (kind 'm': id the merchant) and every active API key made
-- (kind 'k': id the key id, merchant_id its merchant) at or after p_since,
-- each with as_of, this statement's time.  The first look passes
-- -infinity (all of them); each next one the last as_of less an overlap
-- (a row's time is taken before its transaction commits).  No rows:
-- nothing new since p_since.  A hint only: whether a key or merchant may
-- act stays the answer of its own row (pay_auth and the others).
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_directory(p_since timestamp with time zone)
 RETURNS TABLE(kind text, id text, merchant_id text, as_of timestamp with time zone)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT 'm'::text, m.merchant_id, m.merchant_id, now()
      FROM merchants m
     WHERE m.placed_at >= coalesce(p_since, '-infinity')
    UNION ALL
    SELECT 'k'::text, k.key_id, k.merchant_id, now()
      FROM api_keys k
     WHERE k.created_at >= coalesce(p_since, '-infinity') AND k.revoked_at IS NULL;
END
$function$;
REVOKE ALL ON FUNCTION pay_directory(p_since timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_directory(p_since timestamp with time zone) TO payments_gateway;

-- ---------------------------------------------------------------------------
-- Authentication: the key's owner, hash (compared in constant time in C), mode
-- and the merchant's return origins, in one round trip, and the key's use
-- noted when the hash presented is the key's own.  The gateway still
-- compares the hash itself, in constant time; this comparison only decides
-- whether to note the use, at most once an hour.
CREATE OR REPLACE FUNCTION pay_auth(p_key_id text, p_key_hash text)
 RETURNS TABLE(merchant_id text, key_hash text, mode text, origins text[])
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    -- a server that takes no writes (a standby, a shard made read-only)
    -- refuses an UPDATE even of no row: the use is noted when it takes
    -- writes again, and the merchant's reads go on meanwhile
    IF current_setting('transaction_read_only') = 'off' THEN
        UPDATE api_keys k SET last_used_at = now()
         WHERE k.key_id = p_key_id AND k.key_hash = p_key_hash
           AND k.revoked_at IS NULL
           AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 hour');
    END IF;

    RETURN QUERY
    SELECT k.merchant_id, k.key_hash, k.mode,
           ARRAY(SELECT o.origin FROM merchant_return_origins o
                  WHERE o.merchant_id = k.merchant_id ORDER BY o.origin)
      FROM api_keys k
      JOIN merchants m ON m.merchant_id = k.merchant_id
     -- a key of the other mode than its merchant's is none (the CLI never
     -- makes one; one written by hand could pay test money out live)
     WHERE k.key_id = p_key_id AND k.revoked_at IS NULL AND NOT m.disabled
       AND k.mode = m.mode;
END
$function$;
REVOKE ALL ON FUNCTION pay_auth(p_key_id text, p_key_hash text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_auth(p_key_id text, p_key_hash text) TO payments_gateway;

-- The previous release's signature, without the hash: the key row alone,
-- no use noted.  Kept for that release's workers during an upgrade.
CREATE OR REPLACE FUNCTION pay_auth(p_key_id text)
 RETURNS TABLE(merchant_id text, key_hash text, mode text, origins text[])
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_auth(p_key_id, NULL::text)
$function$;
REVOKE ALL ON FUNCTION pay_auth(p_key_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_auth(p_key_id text) TO payments_gateway;

-- When each API key last authenticated a request, so that an operator can
-- see that a shop has switched to its new key before revoking the old one
-- (payments-merchant show).  Coarse on purpose: the gateway writes it at
-- most once an hour per key, never once per request.

ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS last_used_at timestamptz;

COMMENT ON COLUMN api_keys.last_used_at IS
    'the last request this key authenticated, within an hour (NULL: never)';

-- pay_auth with the hash of the key presented: the key row as pay_auth(text)
-- gives it, and the use noted when the hash is the key's own.  The gateway
-- still compares the hash itself, in constant time; this comparison only
-- decides whether to note the use.  pay_auth(text) stays for a worker of the
-- previous release during an upgrade.
CREATE OR REPLACE FUNCTION pay_auth(p_key_id text, p_key_hash text)
RETURNS TABLE(merchant_id text, key_hash text, mode text, origins text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    UPDATE api_keys k SET last_used_at = now()
     WHERE k.key_id = p_key_id AND k.key_hash = p_key_hash
       AND k.revoked_at IS NULL
       AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 hour');

    RETURN QUERY SELECT a.merchant_id, a.key_hash, a.mode, a.origins
                   FROM pay_auth(p_key_id) a;
END
$$;

REVOKE ALL ON FUNCTION pay_auth(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_auth(text, text) TO payments_gateway;

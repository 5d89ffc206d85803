-- When each API key last authenticated a request, so that an operator can
-- see that a shop has switched to its new key before revoking the old one
-- (payments-merchant show).  Coarse on purpose: the gateway writes it at
-- most once an hour per key (pay_auth), never once per request.

ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS last_used_at timestamptz;

COMMENT ON COLUMN api_keys.last_used_at IS
    'the last request this key authenticated, within an hour (NULL: never)';

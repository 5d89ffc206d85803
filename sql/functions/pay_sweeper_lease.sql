-- ---------------------------------------------------------------------------
-- The lease: true when p_owner holds it now (taken or renewed until
-- now() + p_seconds), false when another owner's lease is still running.
CREATE OR REPLACE FUNCTION pay_sweeper_lease(p_owner text, p_seconds integer)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF p_seconds < 1 THEN
        RAISE EXCEPTION 'pay_sweeper_lease: % seconds', p_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO sweeper_lease AS l (id, owner, until)
    VALUES (1, p_owner, now() + make_interval(secs => p_seconds))
    ON CONFLICT (id) DO UPDATE
        SET owner = EXCLUDED.owner,
            until = EXCLUDED.until,
            taken = CASE WHEN l.owner = EXCLUDED.owner THEN l.taken ELSE now() END
        WHERE l.owner = EXCLUDED.owner OR l.until <= now();

    RETURN FOUND;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_lease(p_owner text, p_seconds integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_lease(p_owner text, p_seconds integer) TO payments_gateway;

-- ACME HTTP-01 answers the edges give, for a host and a token, before
-- tenant routing: whichever edge the CA reaches answers it. Written by the
-- provisioner's ACME orders; a row lives until its order is done (or an
-- hour). Writes notify the edges: "acme:<host> <token>", "acme:*".
CREATE TABLE acme_challenges (
    host               text NOT NULL
                       CHECK (length(host) <= 253
                              AND host ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    token              text NOT NULL CHECK (token ~ '^[A-Za-z0-9_-]{1,128}$'),
    key_authorization  text NOT NULL CHECK (length(key_authorization) <= 300
                                            AND key_authorization ~ '^[A-Za-z0-9_.-]+$'),
    expires_at         timestamptz NOT NULL DEFAULT now() + interval '1 hour',
    PRIMARY KEY (host, token)
);

CREATE FUNCTION notify_acme_challenge() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('tenant_changed', 'acme:' || OLD.host || ' ' || OLD.token);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('tenant_changed', 'acme:' || NEW.host || ' ' || NEW.token);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER acme_challenges_changed AFTER INSERT OR UPDATE OR DELETE ON acme_challenges
    FOR EACH ROW EXECUTE FUNCTION notify_acme_challenge();

CREATE FUNCTION notify_acme_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_changed', 'acme:*');
    RETURN NULL;
END $$;

CREATE TRIGGER acme_challenges_truncated AFTER TRUNCATE ON acme_challenges
    FOR EACH STATEMENT EXECUTE FUNCTION notify_acme_truncated();

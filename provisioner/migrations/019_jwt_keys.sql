-- The public keys the edge checks tenant tokens with (tenant_jwt): each a
-- DER SubjectPublicKeyInfo and the one algorithm it may verify, so a token
-- naming another algorithm for the same key (HS256 keyed with the public
-- key, "none") never matches. Keys are uploaded (source 'upload') or
-- copied from an issuer's JWKS by the provisioner ('jwks'); a worker never
-- fetches anything. The edge holds at most 64; more are refused here, where
-- the operator sees why.

CREATE TABLE jwks_sources (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         text NOT NULL UNIQUE
                CHECK (url ~ '^https?://[^[:space:]]+$' AND length(url) <= 2000),
    refresh     int NOT NULL DEFAULT 300 CHECK (refresh BETWEEN 1 AND 86400),
    next_at     timestamptz NOT NULL DEFAULT now(),
    fetched_at  timestamptz,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jwt_keys (
    kid         text PRIMARY KEY CHECK (kid ~ '^[!-~]{1,128}$'),
    alg         text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    der         bytea NOT NULL CHECK (octet_length(der) BETWEEN 32 AND 1200),
    source      text NOT NULL CHECK (source IN ('upload', 'jwks')),
    jwks_id     bigint REFERENCES jwks_sources (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((source = 'jwks') = (jwks_id IS NOT NULL))
);

-- the edge reloads the whole (small) set on any change; per row, so a
-- statement that changes nothing tells it nothing (and PostgreSQL folds a
-- transaction's identical notifications into one)
CREATE FUNCTION notify_jwt_keys_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_changed', 'jwt:*');
    RETURN NULL;
END
$$;

CREATE TRIGGER jwt_keys_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_keys
    FOR EACH ROW EXECUTE FUNCTION notify_jwt_keys_changed();
CREATE TRIGGER jwt_keys_truncated AFTER TRUNCATE ON jwt_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_jwt_keys_changed();

-- state: NULL done, 'exists' (the kid is taken), 'full'
CREATE FUNCTION jwt_key_upload(p_kid text, p_alg text, p_der bytea,
    p_actor text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7340019);
    IF EXISTS (SELECT 1 FROM jwt_keys WHERE kid = p_kid) THEN
        RETURN 'exists';
    END IF;
    IF (SELECT count(*) FROM jwt_keys) >= 64 THEN
        RETURN 'full';
    END IF;
    INSERT INTO jwt_keys (kid, alg, der, source)
    VALUES (p_kid, p_alg, p_der, 'upload');
    INSERT INTO audit_log (actor, action, detail)
    VALUES (p_actor, 'jwt.key.upload',
            jsonb_build_object('kid', p_kid, 'alg', p_alg));
    RETURN NULL;
END
$$;

-- removed: an uploaded key's kid; NULL: no such uploaded key
CREATE FUNCTION jwt_key_delete(p_kid text, p_actor text) RETURNS text
LANGUAGE sql AS $$
    WITH k AS (DELETE FROM jwt_keys WHERE kid = p_kid AND source = 'upload'
               RETURNING kid),
    a AS (INSERT INTO audit_log (actor, action, detail)
          SELECT p_actor, 'jwt.key.remove', jsonb_build_object('kid', kid)
            FROM k)
    SELECT kid FROM k
$$;

-- removed: a JWKS source (by id or URL) with its keys; its URL, or NULL
CREATE FUNCTION jwks_source_delete(p_id bigint, p_url text, p_actor text)
RETURNS text
LANGUAGE sql AS $$
    WITH s AS (DELETE FROM jwks_sources WHERE id = p_id OR url = p_url
               RETURNING url),
    a AS (INSERT INTO audit_log (actor, action, detail)
          SELECT p_actor, 'jwt.jwks.remove', jsonb_build_object('url', url)
            FROM s)
    SELECT url FROM s
$$;

-- the CLI's "jwt remove KID|URL": a key, else a source
CREATE FUNCTION jwt_key_remove(p_what text, p_actor text) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce(jwt_key_delete(p_what, p_actor),
                    jwks_source_delete(NULL, p_what, p_actor))
$$;

-- a source kept: its row as JSON, or NULL when the URL is one already.
-- The provisioner fetches it at its next pass (next_at is now).
CREATE FUNCTION jwks_source_add(p_url text, p_refresh int, p_actor text)
RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    s  jwks_sources;
BEGIN
    INSERT INTO jwks_sources (url, refresh)
    VALUES (p_url, coalesce(p_refresh, 300))
    ON CONFLICT (url) DO NOTHING RETURNING * INTO s;
    IF s.id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_log (actor, action, detail)
    VALUES (p_actor, 'jwt.jwks.add', jsonb_build_object('url', p_url));
    RETURN json_build_object('id', s.id, 'url', s.url, 'refresh', s.refresh,
                             'fetched_at', s.fetched_at, 'error', s.error,
                             'keys', 0);
END
$$;

CREATE FUNCTION jwt_keys_json() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object('kid', k.kid, 'alg', k.alg,
               'source', k.source, 'jwks', s.url, 'created_at', k.created_at)
               ORDER BY k.kid), '[]')
      FROM jwt_keys k LEFT JOIN jwks_sources s ON s.id = k.jwks_id
$$;

CREATE FUNCTION jwks_sources_json() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object('id', s.id, 'url', s.url,
               'refresh', s.refresh, 'fetched_at', s.fetched_at,
               'error', s.error,
               'keys', (SELECT count(*) FROM jwt_keys k WHERE k.jwks_id = s.id))
               ORDER BY s.id), '[]')
      FROM jwks_sources s
$$;

-- A source's keys become exactly the set fetched: new kids added, changed
-- ones replaced, gone ones removed, in one transaction (so one reload at
-- the edge). A kid an upload already holds is not taken over. state: NULL
-- done, 'source' (no such source), 'full', or 'taken: <kid>'.
CREATE FUNCTION jwks_sync(p_source bigint, p_kids text[], p_algs text[],
    p_ders bytea[])
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    taken  text;
BEGIN
    PERFORM pg_advisory_xact_lock(7340019);
    PERFORM 1 FROM jwks_sources WHERE id = p_source FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'source';
    END IF;
    SELECT k INTO taken FROM unnest(p_kids) k
     WHERE EXISTS (SELECT 1 FROM jwt_keys j WHERE j.kid = k
                      AND j.jwks_id IS DISTINCT FROM p_source) LIMIT 1;
    IF taken IS NOT NULL THEN
        RETURN 'taken: ' || taken;
    END IF;
    IF (SELECT count(*) FROM jwt_keys WHERE jwks_id IS DISTINCT FROM p_source)
       + cardinality(p_kids) > 64 THEN
        RETURN 'full';
    END IF;
    -- unchanged keys are left alone: a refresh that finds nothing new
    -- changes no row, and the edge reloads nothing
    DELETE FROM jwt_keys j WHERE j.jwks_id = p_source
       AND NOT EXISTS (SELECT 1 FROM unnest(p_kids, p_algs, p_ders) n(kid, alg, der)
                        WHERE n.kid = j.kid AND n.alg = j.alg AND n.der = j.der);
    INSERT INTO jwt_keys (kid, alg, der, source, jwks_id)
    SELECT n.kid, n.alg, n.der, 'jwks', p_source
      FROM unnest(p_kids, p_algs, p_ders) n(kid, alg, der)
     WHERE NOT EXISTS (SELECT 1 FROM jwt_keys j WHERE j.kid = n.kid);
    UPDATE jwks_sources SET fetched_at = now(), error = NULL,
           next_at = now() + make_interval(secs => refresh)
     WHERE id = p_source;
    RETURN NULL;
END
$$;

-- a fetch that failed: the keys stay as they were, and it is tried again
-- sooner than a full refresh
CREATE FUNCTION jwks_failed(p_source bigint, p_error text) RETURNS void
LANGUAGE sql AS $$
    UPDATE jwks_sources SET error = left(p_error, 500),
           next_at = now() + make_interval(secs => least(refresh, 30))
     WHERE id = p_source
$$;

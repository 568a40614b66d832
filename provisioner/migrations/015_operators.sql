-- The dashboard's operators: people who sign in with a name and a password
-- (yescrypt, hashed by the CLI), and their sessions. A session is known by
-- the SHA-256 of its cookie's token, never the token; its CSRF token is
-- sent by the dashboard with every change. Machines keep their API keys.

CREATE TABLE operators (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9._-]{0,63}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$y$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operator_sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    operator     text NOT NULL REFERENCES operators (name) ON DELETE CASCADE
                 ON UPDATE CASCADE,
    csrf         text NOT NULL CHECK (length(csrf) BETWEEN 32 AND 128),
    address      text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    created_at   timestamptz NOT NULL DEFAULT now(),
    seen_at      timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

CREATE INDEX operator_sessions_operator ON operator_sessions (operator)
    WHERE revoked_at IS NULL;

-- failed sign-ins, for the limits on guessing; old rows are dropped as new
-- ones come
CREATE TABLE operator_signin_failures (
    operator  text NOT NULL,
    address   text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX operator_signin_failures_operator
    ON operator_signin_failures (operator, at);
CREATE INDEX operator_signin_failures_address
    ON operator_signin_failures (address, at);

-- What a sign-in is checked against: the operator's hash (NULL: none, and
-- the edge checks a dummy hash so both take as long), or, past 5 failures
-- for that name or 20 from that address in 15 minutes, the seconds until
-- the oldest of them ages out.
CREATE FUNCTION operator_signin_begin(p_name text, p_address text)
RETURNS json
LANGUAGE sql STABLE AS $$
    WITH f AS (
        SELECT (SELECT count(*) FROM operator_signin_failures
                 WHERE operator = p_name
                   AND at > now() - interval '15 minutes') AS by_name,
               (SELECT count(*) FROM operator_signin_failures
                 WHERE address = p_address
                   AND at > now() - interval '15 minutes') AS by_address,
               (SELECT min(at) FROM (
                    SELECT at FROM operator_signin_failures
                     WHERE (operator = p_name OR address = p_address)
                       AND at > now() - interval '15 minutes') x) AS oldest)
    SELECT CASE WHEN f.by_name >= 5 OR f.by_address >= 20 THEN
               json_build_object('retry_after', greatest(1, ceil(extract(epoch
                   FROM f.oldest + interval '15 minutes' - now())))::int)
           ELSE
               json_build_object('hash', (SELECT password_hash FROM operators
                                           WHERE name = p_name))
           END
      FROM f
$$;

CREATE FUNCTION operator_signin_failed(p_name text, p_address text)
RETURNS void
LANGUAGE sql AS $$
    DELETE FROM operator_signin_failures
     WHERE at < now() - interval '1 day';
    INSERT INTO operator_signin_failures (operator, address)
    VALUES (left(p_name, 64), left(p_address, 64));
    INSERT INTO audit_log (actor, action, detail)
    VALUES ('user:' || left(p_name, 64), 'operator.signin_failed',
            jsonb_build_object('address', p_address));
$$;

CREATE FUNCTION operator_session_create(p_name text, p_token_hash bytea,
                                        p_csrf text, p_address text,
                                        p_user_agent text, p_ttl_s integer)
RETURNS json
LANGUAGE sql AS $$
    WITH s AS (
        INSERT INTO operator_sessions (token_hash, operator, csrf, address,
                                       user_agent, expires_at)
        SELECT p_token_hash, o.name, p_csrf, p_address, left(p_user_agent, 512),
               now() + make_interval(secs => p_ttl_s)
          FROM operators o WHERE o.name = p_name
        RETURNING *),
    a AS (
        INSERT INTO audit_log (actor, action, detail)
        SELECT 'user:' || s.operator, 'operator.signin',
               jsonb_build_object('session', s.id, 'address', s.address)
          FROM s)
    SELECT json_build_object('user', s.operator, 'csrf', s.csrf,
                             'expires_at', s.expires_at, 'session', s.id)
      FROM s
$$;

-- A live session by its token's hash, seen now (written at most once a
-- minute, so a page polling the API does not write on every request).
CREATE FUNCTION operator_session_get(p_token_hash bytea)
RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    s operator_sessions;
BEGIN
    SELECT * INTO s FROM operator_sessions
     WHERE token_hash = p_token_hash AND revoked_at IS NULL
       AND expires_at > now();
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF s.seen_at < now() - interval '1 minute' THEN
        UPDATE operator_sessions SET seen_at = now() WHERE id = s.id;
    END IF;
    RETURN json_build_object('user', s.operator, 'csrf', s.csrf,
                             'expires_at', s.expires_at, 'session', s.id);
END
$$;

CREATE FUNCTION operator_session_revoke(p_token_hash bytea)
RETURNS json
LANGUAGE sql AS $$
    WITH s AS (
        UPDATE operator_sessions SET revoked_at = now()
         WHERE token_hash = p_token_hash AND revoked_at IS NULL
        RETURNING *),
    a AS (
        INSERT INTO audit_log (actor, action, detail)
        SELECT 'user:' || s.operator, 'operator.signout',
               jsonb_build_object('session', s.id)
          FROM s)
    SELECT json_build_object('user', s.operator, 'session', s.id) FROM s
$$;

-- The dashboard's tenant list pages by name in byte order, optionally by
-- a name prefix and a status: each an index range, at a million tenants.
CREATE INDEX tenants_id_c ON tenants (id COLLATE "C");
CREATE INDEX tenants_status_id_c ON tenants (status, id COLLATE "C");

-- The dashboard's platform page: the provisioners and when each last
-- checked in, the edges LISTENing to this registry (what the registry
-- sees of them: address and since when), tenants and jobs by status.
CREATE FUNCTION platform_json() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'provisioners', (SELECT coalesce(json_agg(json_build_object(
                'id', p.id, 'driver', p.driver, 'seen_at', p.seen_at,
                'checked_at', (SELECT max(checked_at) FROM health_checks h
                                WHERE h.provisioner = p.id))
                ORDER BY p.id), '[]') FROM provisioners p),
        'edges', (SELECT coalesce(json_agg(json_build_object(
                'address', coalesce(host(a.client_addr), 'local'),
                'pid', a.pid, 'since', a.backend_start)
                ORDER BY a.backend_start), '[]')
            FROM pg_stat_activity a
           WHERE a.query = 'LISTEN tenant_changed'
             AND a.datname = current_database()),
        'tenants', (SELECT coalesce(json_object_agg(status, n), '{}')
                      FROM (SELECT status, count(*) AS n FROM tenants
                             GROUP BY status) t),
        'jobs', (SELECT coalesce(json_object_agg(status, n), '{}')
                   FROM (SELECT status, count(*) AS n FROM jobs
                          GROUP BY status) j))
$$;

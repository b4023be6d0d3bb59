-- Who may read and change what over the HTTP API (docs/security.md). Every secret here is stored as its SHA-256
-- (store.Hash): API tokens and session ids are 256 random bits, so a leaked table grants nothing.
--
-- clusters: NULL is every cluster; otherwise the names or uids of the clusters the token or user may see (a
-- name matches every cluster of that name, as the API's cluster filter does).

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    token_hash   bytea NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('viewer', 'admin')),
    clusters     text[],
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz
);

-- A signed-in user's session (OIDC login). The role and clusters are decided at login from the auth file's
-- bindings and kept for the session's life; signing in again takes a changed binding.
CREATE TABLE sessions (
    id_hash    bytea PRIMARY KEY,
    subject    text NOT NULL,
    email      text NOT NULL DEFAULT '',
    name       text NOT NULL DEFAULT '',
    role       text NOT NULL CHECK (role IN ('viewer', 'admin')),
    clusters   text[],
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- A login in progress: the OAuth2 state (hashed), its PKCE verifier and OIDC nonce, and where to go after.
-- Kept server-side so any replica can finish a login another started; taken (deleted) once.
CREATE TABLE oidc_logins (
    state_hash bytea PRIMARY KEY,
    verifier   text NOT NULL,
    nonce      text NOT NULL,
    return_to  text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Every admin action, over the API or the command line.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    actor_kind text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}',
    remote     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

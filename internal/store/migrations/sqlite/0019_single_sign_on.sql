-- Single sign-on for people: OpenID Connect identity providers (the client secret sealed with
-- the key-encryption key), the external identities linked to directory users, the group
-- memberships a provider's groups claim made (so that they go when the claim drops them), and
-- sign-ins in progress (shared by replicas: the provider may send the browser back to another).
CREATE TABLE identity_providers (
	id             INTEGER PRIMARY KEY,
	name           TEXT NOT NULL UNIQUE,
	issuer         TEXT NOT NULL,
	client_id      TEXT NOT NULL,
	secret_sealed  BLOB,
	claim_username TEXT NOT NULL,
	claim_email    TEXT NOT NULL,
	claim_groups   TEXT NOT NULL,
	scopes         TEXT NOT NULL,
	create_users   INTEGER NOT NULL DEFAULT 0,
	redirect_uri   TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL
);

CREATE TABLE external_identities (
	idp_id  INTEGER NOT NULL REFERENCES identity_providers(id) ON DELETE CASCADE,
	subject TEXT NOT NULL,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	PRIMARY KEY (idp_id, subject)
);

CREATE TABLE sso_group_members (
	user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, group_id)
);

CREATE TABLE sso_logins (
	id               TEXT PRIMARY KEY,
	idp_id           INTEGER NOT NULL REFERENCES identity_providers(id) ON DELETE CASCADE,
	kind             TEXT NOT NULL,
	client_redirect  TEXT NOT NULL DEFAULT '',
	client_state     TEXT NOT NULL DEFAULT '',
	client_challenge TEXT NOT NULL DEFAULT '',
	nonce            TEXT NOT NULL DEFAULT '',
	verifier         TEXT NOT NULL DEFAULT '',
	device_code      TEXT NOT NULL DEFAULT '',
	code_hash        TEXT,
	user_id          INTEGER,
	subject          TEXT NOT NULL DEFAULT '',
	client_ip        TEXT NOT NULL DEFAULT '',
	next_poll        INTEGER NOT NULL DEFAULT 0,
	expires_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX sso_logins_code ON sso_logins(code_hash) WHERE code_hash IS NOT NULL;
CREATE INDEX sso_logins_client ON sso_logins(client_ip);

-- A user who signs in with single sign-on only: a password sign-in is refused.
ALTER TABLE users ADD COLUMN sso_only INTEGER NOT NULL DEFAULT 0;

-- Federated credentials of service principals (Entra's federatedIdentityCredentials): tokens of
-- an external OpenID Connect issuer whose subject is subject exactly, or whose claims satisfy
-- expression (a claims matching expression), with one of the audiences (a JSON array), sign in
-- as the service principal. jwks: a static key set for an issuer berth cannot reach.
CREATE TABLE federated_credentials (
	id          TEXT PRIMARY KEY,
	sp_id       INTEGER NOT NULL REFERENCES service_principals(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	issuer      TEXT NOT NULL,
	subject     TEXT NOT NULL DEFAULT '',
	expression  TEXT NOT NULL DEFAULT '',
	audiences   TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	jwks        TEXT,
	created_at  INTEGER NOT NULL,
	UNIQUE (sp_id, name),
	UNIQUE (sp_id, issuer, subject, expression)
);

-- The issuer and subject of a federated (or single sign-on) sign-in.
ALTER TABLE login_events ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE login_events ADD COLUMN subject TEXT NOT NULL DEFAULT '';

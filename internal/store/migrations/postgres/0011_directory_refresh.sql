-- The CLI's refresh tokens for the directory (/mgmt/v1/token, grant_type=refresh_token), by the
-- SHA-256 of the token (an opaque random string; the token itself is not kept): each is
-- used once and replaced (rotation); a second use of one revokes its whole family (a stolen copy),
-- and berth auth logout revokes the family. Rows past their expiry are purged.
CREATE TABLE directory_refresh_tokens (
	id TEXT PRIMARY KEY,
	family TEXT NOT NULL,
	principal_kind TEXT NOT NULL,
	principal_name TEXT NOT NULL,
	principal_id BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0,
	revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX directory_refresh_tokens_family ON directory_refresh_tokens (family);

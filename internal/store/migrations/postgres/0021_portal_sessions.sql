-- The portal's sessions: one row per signed-in browser, shared by replicas. The id is the SHA-256
-- of the cookie's secret (the cookie alone signs in); the user's directory tokens are sealed with
-- the key-encryption key, bound to the row. A session ends when it has been idle for the
-- portal's idle timeout or reaches its absolute one (expires_at), or at sign-out.
CREATE TABLE portal_sessions (
	id             TEXT PRIMARY KEY,
	principal      TEXT NOT NULL,
	tokens_sealed  BYTEA NOT NULL,
	token_expires  BIGINT NOT NULL,
	csrf           TEXT NOT NULL,
	client_ip      TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	seen_at        BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	renewing_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX portal_sessions_principal ON portal_sessions(principal);
CREATE INDEX portal_sessions_expires ON portal_sessions(expires_at);

-- The portal's sessions: one row per signed-in browser, shared by replicas. The id is the SHA-256
-- of the cookie's secret (the cookie alone signs in); the user's directory tokens are sealed with
-- the key-encryption key, bound to the row. A session ends when it has been idle for the
-- portal's idle timeout or reaches its absolute one (expires_at), or at sign-out.
CREATE TABLE portal_sessions (
	id             TEXT PRIMARY KEY,
	principal      TEXT NOT NULL,
	tokens_sealed  BLOB NOT NULL,
	token_expires  INTEGER NOT NULL,
	csrf           TEXT NOT NULL,
	client_ip      TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	seen_at        INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	renewing_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX portal_sessions_principal ON portal_sessions(principal);
CREATE INDEX portal_sessions_expires ON portal_sessions(expires_at);

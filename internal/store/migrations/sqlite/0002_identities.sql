-- Identities and sign-in: directory users, groups and service principals; per-registry admin user,
-- repository-scoped tokens and scope maps; role assignments; every secret as an argon2id hash;
-- JWT signing keys; failed sign-in counters; the policy version replicas compare.
ALTER TABLE registries ADD COLUMN admin_enabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE users (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE groups (
	id          INTEGER PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);

CREATE TABLE group_members (
	group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE service_principals (
	id           INTEGER PRIMARY KEY,
	app_id       TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL,
	created_at   INTEGER NOT NULL
);

CREATE TABLE scope_maps (
	id          INTEGER PRIMARY KEY,
	registry_id INTEGER NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	system      INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	UNIQUE (registry_id, name)
);

CREATE TABLE scope_map_rules (
	scope_map_id INTEGER NOT NULL REFERENCES scope_maps(id) ON DELETE CASCADE,
	repository   TEXT NOT NULL,
	action       TEXT NOT NULL,
	PRIMARY KEY (scope_map_id, repository, action)
);

CREATE TABLE tokens (
	id           INTEGER PRIMARY KEY,
	registry_id  INTEGER NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	scope_map_id INTEGER REFERENCES scope_maps(id) ON DELETE RESTRICT,
	status       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	UNIQUE (registry_id, name)
);

-- secrets of every kind of identity: owner_kind is user, sp, admin (owner_id = registry id) or
-- token; name is password, password2, password1 or a service principal's key id.
CREATE TABLE secrets (
	owner_kind TEXT NOT NULL,
	owner_id   INTEGER NOT NULL,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	PRIMARY KEY (owner_kind, owner_id, name)
);

CREATE TABLE role_assignments (
	id                TEXT PRIMARY KEY,
	principal_kind    TEXT NOT NULL,
	principal_id      INTEGER NOT NULL,
	role              TEXT NOT NULL,
	scope             TEXT NOT NULL,
	condition         TEXT NOT NULL DEFAULT '',
	condition_version TEXT NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL
);
CREATE INDEX role_assignments_principal ON role_assignments(principal_kind, principal_id);

CREATE TABLE signing_keys (
	kid         TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	private_key BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	retire_at   INTEGER NOT NULL
);

CREATE TABLE signin_failures (
	key           TEXT PRIMARY KEY,
	failures      INTEGER NOT NULL,
	window_start  INTEGER NOT NULL,
	blocked_until INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('policy', 1);

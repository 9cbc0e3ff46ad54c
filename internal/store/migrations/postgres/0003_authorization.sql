-- PostgreSQL twin of migrations/sqlite/0003_authorization.sql: BIGINT for integers (times are unix milliseconds),
-- identity columns for ids, BYTEA for blobs, and byte-order ("C") collation for text, as SQLite compares.
-- Authorization and exposure: the per-registry role assignment mode, anonymous pull (registry-wide
-- or for repository patterns), public network access, the default network action and the IP
-- allow rules.
ALTER TABLE registries ADD COLUMN role_assignment_mode TEXT COLLATE "C" NOT NULL DEFAULT 'rbac';
ALTER TABLE registries ADD COLUMN anonymous_pull_enabled BIGINT NOT NULL DEFAULT 0;
-- space-separated repository names and "prefix/*" patterns anonymous clients may pull
ALTER TABLE registries ADD COLUMN anonymous_pull_repositories TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE registries ADD COLUMN public_network_access BIGINT NOT NULL DEFAULT 1;
ALTER TABLE registries ADD COLUMN default_action TEXT COLLATE "C" NOT NULL DEFAULT 'Allow';

CREATE TABLE network_rules (
	registry_id BIGINT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	value       TEXT COLLATE "C" NOT NULL, -- canonical CIDR: 203.0.113.0/24, 2001:db8::/32, 198.51.100.7/32
	action      TEXT COLLATE "C" NOT NULL DEFAULT 'Allow',
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (registry_id, value)
);
CREATE INDEX role_assignments_scope ON role_assignments(scope);

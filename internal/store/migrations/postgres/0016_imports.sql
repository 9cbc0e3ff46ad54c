-- Imports (az acr import): a server-side copy runs in the background; its row says how it goes,
-- for whichever replica the caller asks.
CREATE TABLE imports (
	id          TEXT PRIMARY KEY,
	registry_id BIGINT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	source      TEXT NOT NULL,
	target      TEXT NOT NULL,
	status      TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	manifests   BIGINT NOT NULL DEFAULT 0,
	blobs       BIGINT NOT NULL DEFAULT 0,
	bytes       BIGINT NOT NULL DEFAULT 0,
	started_at  BIGINT NOT NULL,
	ended_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX imports_registry ON imports(registry_id, started_at);

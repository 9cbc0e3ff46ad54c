-- Registry core: registries, repositories, blobs linked into repositories, manifests, their
-- references, tags and upload sessions. Times are unix milliseconds.
CREATE TABLE registries (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	login_server TEXT UNIQUE,
	is_default   INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL
);

CREATE TABLE repositories (
	id          INTEGER PRIMARY KEY,
	registry_id INTEGER NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	UNIQUE (registry_id, name)
);

CREATE TABLE repository_blobs (
	repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
	digest        TEXT NOT NULL,
	size          INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
	repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
	digest        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	size          INTEGER NOT NULL,
	subject       TEXT,
	annotations   TEXT,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repository_id, subject) WHERE subject IS NOT NULL;

CREATE TABLE manifest_references (
	repository_id INTEGER NOT NULL,
	digest        TEXT NOT NULL,
	child         TEXT NOT NULL,
	PRIMARY KEY (repository_id, digest, child),
	FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_child ON manifest_references(repository_id, child);

CREATE TABLE tags (
	repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	digest        TEXT NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (repository_id, name),
	FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags(repository_id, digest);

CREATE TABLE uploads (
	id             TEXT PRIMARY KEY,
	registry_id    INTEGER NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	repository     TEXT NOT NULL,
	size           INTEGER NOT NULL DEFAULT 0,
	hash_algorithm TEXT NOT NULL,
	hash_state     BLOB,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
);
CREATE INDEX uploads_registry ON uploads(registry_id);
CREATE INDEX uploads_updated ON uploads(updated_at);

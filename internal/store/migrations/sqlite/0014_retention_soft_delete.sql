-- A registry's policies, as ACR's: retention of untagged manifests (days after they lost their
-- last tag) and soft delete (a deleted manifest is kept, restorable, for retention days).
ALTER TABLE registries ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 7;
ALTER TABLE registries ADD COLUMN retention_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registries ADD COLUMN retention_updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registries ADD COLUMN soft_delete_days INTEGER NOT NULL DEFAULT 7;
ALTER TABLE registries ADD COLUMN soft_delete_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registries ADD COLUMN soft_delete_updated_at INTEGER NOT NULL DEFAULT 0;
-- when a manifest lost its last tag (0: never tagged, or before berth recorded it)
ALTER TABLE manifests ADD COLUMN untagged_at INTEGER NOT NULL DEFAULT 0;

-- Soft-deleted manifests, by repository name (the repository itself may be gone): what restoring
-- one needs (its tags, the blobs and manifests it references, with the blobs' sizes), and when
-- it is purged for good. Garbage collection keeps what they reference.
CREATE TABLE deleted_manifests (
	registry_id   INTEGER NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	repository    TEXT NOT NULL,
	digest        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	size          INTEGER NOT NULL,
	subject       TEXT,
	annotations   TEXT,
	tags          TEXT NOT NULL DEFAULT '[]',
	created_at    INTEGER NOT NULL,
	deleted_at    INTEGER NOT NULL,
	purge_at      INTEGER NOT NULL,
	PRIMARY KEY (registry_id, repository, digest)
);
CREATE INDEX deleted_manifests_purge ON deleted_manifests(purge_at);
CREATE INDEX deleted_manifests_digest ON deleted_manifests(digest);
CREATE TABLE deleted_manifest_references (
	registry_id INTEGER NOT NULL,
	repository  TEXT NOT NULL,
	digest      TEXT NOT NULL,
	child       TEXT NOT NULL,
	blob_size   INTEGER, -- a blob's size; NULL for a manifest
	PRIMARY KEY (registry_id, repository, digest, child),
	FOREIGN KEY (registry_id, repository, digest) REFERENCES deleted_manifests(registry_id, repository, digest) ON DELETE CASCADE
);
CREATE INDEX deleted_manifest_references_child ON deleted_manifest_references(child);

-- Background work only one replica does at a time (retention, the purge of soft-deleted
-- manifests): a lease per job.
CREATE TABLE job_leases (
	name   TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	until  INTEGER NOT NULL
);

-- PostgreSQL twin of migrations/sqlite/0005_gc.sql.
-- Garbage collection: a digest is tombstoned, in the same serialized transaction that finds it
-- unreferenced, before its blob is deleted; links and manifests of a tombstoned digest are refused
-- until the deletion is over. See internal/gc.
CREATE TABLE blob_tombstones (
	digest     TEXT COLLATE "C" PRIMARY KEY,
	created_at BIGINT NOT NULL
);
-- What garbage collection asks: is a digest a manifest, or referenced by one, anywhere?
CREATE INDEX manifest_references_any_child ON manifest_references(child);
CREATE INDEX manifests_digest ON manifests(digest);

-- ACR's changeable attributes ("locks") of repositories, tags and manifests: write (push, and
-- with it delete), delete, read (pull) and list (shown in listings) enabled, 1 or 0; and the times
-- az acr repository show / show-tags / manifest list-metadata print.
ALTER TABLE repositories ADD COLUMN write_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE repositories ADD COLUMN delete_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE repositories ADD COLUMN read_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE repositories ADD COLUMN list_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE repositories ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE manifests ADD COLUMN write_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE manifests ADD COLUMN delete_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE manifests ADD COLUMN read_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE manifests ADD COLUMN list_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE manifests ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tags ADD COLUMN write_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tags ADD COLUMN delete_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tags ADD COLUMN read_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tags ADD COLUMN list_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tags ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
-- listings by time (show-tags --orderby time_desc, list-metadata)
CREATE INDEX tags_updated ON tags(repository_id, updated_at);
CREATE INDEX manifests_created ON manifests(repository_id, created_at);

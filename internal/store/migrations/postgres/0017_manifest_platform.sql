-- What az acr manifest list-metadata prints of an image beside its size and times: the config's
-- media type, and the platform (architecture, os) read from the config at push. Empty for an
-- index, an artifact, or a config that is not an image config.
ALTER TABLE manifests ADD COLUMN config_media_type TEXT NOT NULL DEFAULT '';
ALTER TABLE manifests ADD COLUMN architecture TEXT NOT NULL DEFAULT '';
ALTER TABLE manifests ADD COLUMN os TEXT NOT NULL DEFAULT '';
ALTER TABLE deleted_manifests ADD COLUMN config_media_type TEXT NOT NULL DEFAULT '';
ALTER TABLE deleted_manifests ADD COLUMN architecture TEXT NOT NULL DEFAULT '';
ALTER TABLE deleted_manifests ADD COLUMN os TEXT NOT NULL DEFAULT '';

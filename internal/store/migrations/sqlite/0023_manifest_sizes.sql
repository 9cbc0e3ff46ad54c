-- A registry's usage (az acr show-usage) sums its manifests' sizes: from the index alone, not one
-- table row per manifest.
CREATE INDEX manifests_repository_size ON manifests(repository_id, size);

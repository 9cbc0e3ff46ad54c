-- Who opened each upload session ("user:7", "token:3" …; "" for sessions from before): open
-- uploads are limited per identity as well as per registry.
ALTER TABLE uploads ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX uploads_owner ON uploads (registry_id, owner);

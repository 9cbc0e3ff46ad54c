-- Which request (on any replica) is writing an upload, until when: two replicas never append to
-- one upload at once (store.LeaseUpload).
ALTER TABLE uploads ADD COLUMN lease TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

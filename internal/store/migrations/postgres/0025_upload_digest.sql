-- The digest of an upload's bytes at its last checkpoint (issue 23): a blob store may already
-- keep those bytes where that blob belongs (S3 does, so that the commit copies nothing), and
-- garbage collection spares a blob an open upload holds.
ALTER TABLE uploads ADD COLUMN digest TEXT;
CREATE INDEX uploads_digest ON uploads(digest);

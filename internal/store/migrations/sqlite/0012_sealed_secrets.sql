-- The admin user's passwords, sealed with the key-encryption key (package seal), beside their
-- hash: ACR returns them to callers with listCredentials, so berth must read them back. Other
-- kinds of secret (user, sp, token) keep the hash only; admin passwords made by an older berth
-- have none until renewed.
ALTER TABLE secrets ADD COLUMN sealed BLOB;

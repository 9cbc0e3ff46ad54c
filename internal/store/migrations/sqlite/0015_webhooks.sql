-- Webhooks, as ACR's: a receiver's address and custom headers (sealed with the key-encryption
-- key: they may carry credentials; config_sealed), the actions and the repo:tag scope that
-- trigger it, and berth's HMAC secret (sealed) that signs every delivery.
CREATE TABLE webhooks (
	id            INTEGER PRIMARY KEY,
	registry_id   INTEGER NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	config_sealed BLOB NOT NULL,
	actions       TEXT NOT NULL,
	scope         TEXT NOT NULL DEFAULT '',
	status        TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	UNIQUE (registry_id, name)
);

-- The outbox: one row per delivery, written in the transaction of the push or delete that
-- caused it (or of a ping), delivered at least once by one replica at a time (a lease), retried
-- with backoff, and kept with its last answer for list-events.
CREATE TABLE webhook_deliveries (
	id          TEXT PRIMARY KEY,
	webhook_id  INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
	action      TEXT NOT NULL,
	payload     TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	next_at     INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	status      TEXT NOT NULL DEFAULT 'pending',
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	latency_ms  INTEGER NOT NULL DEFAULT 0,
	done_at     INTEGER NOT NULL DEFAULT 0,
	lease       TEXT NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, created_at);

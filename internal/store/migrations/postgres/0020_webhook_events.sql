-- A change that webhooks may want (a push, a delete) writes one row here in its own transaction;
-- the deliverer fans it out into one delivery per matching webhook (webhook_deliveries) in the
-- background, so that a push with many webhooks writes one row, not one per webhook.
CREATE TABLE webhook_events (
	id          TEXT PRIMARY KEY,
	registry_id BIGINT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
	payload     TEXT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events(created_at);

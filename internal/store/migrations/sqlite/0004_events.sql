-- Audit: one row per sign-in attempt (login_events) and per manifest push, pull, delete or untag
-- (repository_events). Registries are named, not referenced: events outlive what they describe.
-- Times are Unix milliseconds, durations microseconds; scope lists are space-separated.
CREATE TABLE login_events (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	time           INTEGER NOT NULL,
	registry       TEXT NOT NULL, -- '' for directory sign-ins
	login_server   TEXT NOT NULL,
	operation      TEXT NOT NULL,
	identity       TEXT NOT NULL,
	identity_kind  TEXT NOT NULL,
	ip             TEXT NOT NULL,
	user_agent     TEXT NOT NULL,
	status         INTEGER NOT NULL,
	result         TEXT NOT NULL,
	reason         TEXT NOT NULL,
	message        TEXT NOT NULL,
	granted        TEXT NOT NULL,
	refused        TEXT NOT NULL,
	duration_us    INTEGER NOT NULL,
	correlation_id TEXT NOT NULL,
	token_id       TEXT NOT NULL
);
CREATE INDEX login_events_time ON login_events(time);
CREATE INDEX login_events_registry ON login_events(registry, id);
CREATE INDEX login_events_correlation ON login_events(correlation_id);

CREATE TABLE repository_events (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	time           INTEGER NOT NULL,
	registry       TEXT NOT NULL,
	login_server   TEXT NOT NULL,
	operation      TEXT NOT NULL, -- push, pull, delete, untag
	repository     TEXT NOT NULL,
	tag            TEXT NOT NULL,
	digest         TEXT NOT NULL,
	media_type     TEXT NOT NULL,
	artifact_type  TEXT NOT NULL,
	size           INTEGER NOT NULL,
	identity       TEXT NOT NULL,
	identity_kind  TEXT NOT NULL,
	ip             TEXT NOT NULL,
	user_agent     TEXT NOT NULL,
	status         INTEGER NOT NULL,
	result         TEXT NOT NULL,
	reason         TEXT NOT NULL,
	message        TEXT NOT NULL,
	duration_us    INTEGER NOT NULL,
	correlation_id TEXT NOT NULL
);
CREATE INDEX repository_events_time ON repository_events(time);
CREATE INDEX repository_events_registry ON repository_events(registry, id);
CREATE INDEX repository_events_correlation ON repository_events(correlation_id);

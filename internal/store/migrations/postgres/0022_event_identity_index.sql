-- Events by identity (the portal's and 'berth logs' filter, LOWER(identity) = ?), newest first,
-- without reading every event of the registry.
CREATE INDEX login_events_identity ON login_events(LOWER(identity), id);
CREATE INDEX repository_events_identity ON repository_events(LOWER(identity), id);

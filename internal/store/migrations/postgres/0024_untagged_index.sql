-- Retention finds the oldest untagged manifests first: an index of those only (issue 23: the
-- candidates grew with every manifest of the server).
CREATE INDEX manifests_untagged ON manifests(untagged_at) WHERE untagged_at > 0;

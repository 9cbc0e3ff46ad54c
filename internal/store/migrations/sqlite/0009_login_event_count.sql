-- How many attempts a login event stands for: 1, or for failures that name no verified
-- identity (a garbage token, an unknown name, a refused address), the attempts from one address
-- with one reason in one interval, written as one row (audit.Writer).
ALTER TABLE login_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;

-- How many times in a row a sign-in key was blocked: each lockout that follows the last one
-- within the failure window lasts twice as long (store.RecordSigninFailure).
ALTER TABLE signin_failures ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;

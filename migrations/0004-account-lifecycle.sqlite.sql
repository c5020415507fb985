-- migrate:up
-- A session is one login: the family of refresh tokens it rotates through, with what the person
-- sees of it (when, from where, which client). Access tokens name it in their `sid` claim, and
-- authentication reads it with the user row, so an ended session's tokens are refused at once.
-- The session id is the refresh-token family id. Times are epoch milliseconds.
CREATE TABLE sessions (
  id BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  ended_at INTEGER,
  ip TEXT,
  user_agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The families that exist already become sessions; one with a revoked token was revoked whole.
INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ended_at)
SELECT family_id, MIN(user_id), MIN(created_at), MAX(created_at), MAX(expires_at), MAX(revoked_at)
FROM refresh_tokens GROUP BY family_id;

-- What happened to an account, for its owner to see; pruned after AUDIT_RETENTION_DAYS.
CREATE TABLE security_events (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  ip TEXT,
  user_agent TEXT
);
CREATE INDEX security_events_user ON security_events (user_id, at);
CREATE INDEX security_events_time ON security_events (at);

-- migrate:down
DROP TABLE security_events;
DROP TABLE sessions;

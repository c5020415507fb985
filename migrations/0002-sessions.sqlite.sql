-- migrate:up
-- Access tokens issued before this instant (epoch milliseconds) are refused: set by logout.
ALTER TABLE users ADD COLUMN tokens_not_before INTEGER NOT NULL DEFAULT 0;

-- Refresh tokens are kept only as SHA-256 hashes. Times are epoch milliseconds.
CREATE TABLE refresh_tokens (
  id INTEGER PRIMARY KEY,
  token_hash BLOB NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  family_id BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  revoked_at INTEGER
);
CREATE UNIQUE INDEX refresh_tokens_hash_unique ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- migrate:down
DROP TABLE refresh_tokens;
ALTER TABLE users DROP COLUMN tokens_not_before;

-- migrate:up
-- A session is one login: the family of refresh tokens it rotates through, with what the person
-- sees of it (when, from where, which client). Access tokens name it in their `sid` claim, and
-- authentication reads it with the user row, so an ended session's tokens are refused at once.
-- The session id is the refresh-token family id. Times are epoch milliseconds.
CREATE TABLE sessions (
  id BINARY(16) NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  ended_at BIGINT NULL,
  ip VARCHAR(64) NULL,
  user_agent VARCHAR(256) NULL,
  PRIMARY KEY (id),
  KEY sessions_user (user_id, created_at),
  KEY sessions_expiry (expires_at),
  CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The families that exist already become sessions; one with a revoked token was revoked whole.
INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ended_at)
SELECT family_id, MIN(user_id), MIN(created_at), MAX(created_at), MAX(expires_at), MAX(revoked_at)
FROM refresh_tokens GROUP BY family_id;

-- What happened to an account, for its owner to see; pruned after AUDIT_RETENTION_DAYS.
CREATE TABLE security_events (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id BIGINT UNSIGNED NOT NULL,
  type VARCHAR(32) NOT NULL,
  at BIGINT NOT NULL,
  ip VARCHAR(64) NULL,
  user_agent VARCHAR(256) NULL,
  PRIMARY KEY (id),
  KEY security_events_user (user_id, at),
  KEY security_events_time (at),
  CONSTRAINT security_events_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- migrate:down
DROP TABLE security_events;
DROP TABLE sessions;

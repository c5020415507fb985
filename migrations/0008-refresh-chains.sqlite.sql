-- migrate:up
-- A session's refresh tokens become a chain kept in the session's row: see the MySQL side of this
-- migration. refresh_tokens stays for the tokens issued before it.
ALTER TABLE sessions ADD COLUMN refresh_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN refresh_hash BLOB;
ALTER TABLE sessions ADD COLUMN refresh_key BLOB;

-- migrate:down
-- Sessions begun since this migration have no refresh_tokens row: they end, as the code before it
-- cannot rotate their tokens.
UPDATE sessions SET ended_at = last_used_at WHERE refresh_key IS NOT NULL AND ended_at IS NULL;
ALTER TABLE sessions DROP COLUMN refresh_generation;
ALTER TABLE sessions DROP COLUMN refresh_hash;
ALTER TABLE sessions DROP COLUMN refresh_key;

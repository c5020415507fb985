-- migrate:up
-- A session's refresh tokens become a chain kept in the session's row: the current generation,
-- the SHA-256 hash of the current token's secret and a key for the tags that prove an older token
-- was issued (src/accounts/refresh-token.ts). A rotation is then one conditional UPDATE of that
-- row, instead of a used token's update, its successor's insert and the session's update.
-- refresh_tokens stays for the tokens issued before this migration: a session's last one rotates
-- once into the chain (its key is set then), and it can go once REFRESH_TOKEN_TTL has passed.
ALTER TABLE sessions
  ADD COLUMN refresh_generation INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN refresh_hash BINARY(32) NULL,
  ADD COLUMN refresh_key BINARY(32) NULL;

-- The procedure of 0007 rotated rows of refresh_tokens; this one moves chains.
DROP PROCEDURE IF EXISTS rotate_refresh_tokens;

-- The rotations of one turn of the service's event loop (up to 64), in one round trip and one
-- transaction. `batch` holds 100 bytes per rotation: the session id (16), the presented token's
-- generation (4, big-endian), its secret's hash (32), the successor's hash (32), then the time of
-- the request and the successor's expiry (epoch milliseconds, 8 bytes each, big-endian). Each
-- rotation is one UPDATE of its session's row, which moves the chain only if generation and hash
-- are the current ones and the session is live; its row lock makes a concurrent rotation of the
-- same token wait, then find the chain moved. The answer is one row, `answers`: a JSON array with,
-- per rotation in order, the session's row after it: [user_id, refresh_generation, refresh_hash
-- (hex), refresh_key (hex), ended_at, expires_at, tokens_not_before], all null when there is no
-- such session. Any error (a deadlock; on Galera, lost certification) rolls the whole call back,
-- and the service runs it again. INVOKER: it runs with the caller's privileges.
DELIMITER //
CREATE PROCEDURE rotate_refresh_chains (IN batch BLOB)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE n INT DEFAULT LENGTH(batch) DIV 100;
  DECLARE i INT DEFAULT 0;
  DECLARE item VARBINARY(100);
  DECLARE sid BINARY(16);
  DECLARE now_ms BIGINT;
  DECLARE owner BIGINT UNSIGNED;
  DECLARE chain_generation INT UNSIGNED;
  DECLARE chain_hash BINARY(32);
  DECLARE chain_key BINARY(32);
  DECLARE ended BIGINT;
  DECLARE expires BIGINT;
  DECLARE not_before BIGINT;
  DECLARE answers LONGTEXT DEFAULT '';
  -- A session that is not there: its columns stay NULL.
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    ROLLBACK;
    RESIGNAL;
  END;

  -- No gap locks: a token naming a session that does not exist must not lock the gap where
  -- other calls insert new sessions (random ids).
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;
  WHILE i < n DO
    SET item = SUBSTRING(batch, i * 100 + 1, 100);
    SET sid = SUBSTRING(item, 1, 16);
    SET now_ms = CONV(HEX(SUBSTRING(item, 85, 8)), 16, 10);
    UPDATE sessions SET refresh_generation = refresh_generation + 1, refresh_hash = SUBSTRING(item, 53, 32),
        last_used_at = now_ms, expires_at = CONV(HEX(SUBSTRING(item, 93, 8)), 16, 10)
      WHERE id = sid AND refresh_generation = CONV(HEX(SUBSTRING(item, 17, 4)), 16, 10)
        AND refresh_hash = SUBSTRING(item, 21, 32) AND ended_at IS NULL AND expires_at > now_ms;
    SET owner = NULL, chain_generation = NULL, chain_hash = NULL, chain_key = NULL, ended = NULL, expires = NULL, not_before = NULL;
    SELECT s.user_id, s.refresh_generation, s.refresh_hash, s.refresh_key, s.ended_at, s.expires_at, u.tokens_not_before
      INTO owner, chain_generation, chain_hash, chain_key, ended, expires, not_before
      FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = sid;
    SET answers = CONCAT(answers, IF(i = 0, '', ','),
      JSON_ARRAY(owner, chain_generation, HEX(chain_hash), HEX(chain_key), ended, expires, not_before));
    SET i = i + 1;
  END WHILE;
  COMMIT;
  SELECT CONCAT('[', answers, ']') AS answers;
END //
DELIMITER ;

-- migrate:down
-- Sessions begun since this migration have no refresh_tokens row: they end, as the code before it
-- cannot rotate their tokens.
UPDATE sessions SET ended_at = last_used_at WHERE refresh_key IS NOT NULL AND ended_at IS NULL;
DROP PROCEDURE IF EXISTS rotate_refresh_chains;
ALTER TABLE sessions DROP COLUMN refresh_generation, DROP COLUMN refresh_hash, DROP COLUMN refresh_key;

-- 0007's procedure, as that migration made it.
DELIMITER //
CREATE PROCEDURE rotate_refresh_tokens (IN batch BLOB)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE n INT DEFAULT LENGTH(batch) DIV 80;
  DECLARE i INT DEFAULT 0;
  DECLARE item VARBINARY(80);
  DECLARE presented BINARY(32);
  DECLARE now_ms BIGINT;
  DECLARE expires BIGINT;
  DECLARE rotated INT;
  DECLARE token_user BIGINT UNSIGNED;
  DECLARE family BINARY(16);
  DECLARE used BIGINT;
  DECLARE not_before BIGINT;
  DECLARE answers LONGTEXT DEFAULT '';
  -- A token that is not there: its columns stay NULL.
  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    ROLLBACK;
    RESIGNAL;
  END;

  -- No gap locks: under REPEATABLE READ the UPDATE's search locks the gap before the token in
  -- the hash index, where other calls' successors (random hashes) are inserted, and concurrent
  -- calls deadlock. Each statement still reads, and locks, the latest committed rows.
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;
  WHILE i < n DO
    SET item = SUBSTRING(batch, i * 80 + 1, 80);
    SET presented = SUBSTRING(item, 1, 32);
    SET now_ms = CONV(HEX(SUBSTRING(item, 65, 8)), 16, 10);
    SET expires = CONV(HEX(SUBSTRING(item, 73, 8)), 16, 10);
    UPDATE refresh_tokens SET used_at = now_ms
      WHERE token_hash = presented AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now_ms;
    SET rotated = ROW_COUNT();
    SET token_user = NULL, family = NULL, used = NULL, not_before = NULL;
    SELECT r.user_id, r.family_id, r.used_at, u.tokens_not_before INTO token_user, family, used, not_before
      FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = presented;
    IF rotated = 1 THEN
      INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, expires_at)
        VALUES (SUBSTRING(item, 33, 32), token_user, family, now_ms, expires);
      UPDATE sessions SET last_used_at = now_ms, expires_at = expires WHERE id = family;
    END IF;
    SET answers = CONCAT(answers, IF(i = 0, '', ','), JSON_ARRAY(rotated, token_user, HEX(family), used, not_before));
    SET i = i + 1;
  END WHILE;
  COMMIT;
  SELECT CONCAT('[', answers, ']') AS answers;
END //
DELIMITER ;

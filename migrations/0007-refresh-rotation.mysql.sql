-- migrate:up
-- Refresh-token rotations in one round trip: the service sends the rotations that arrived in one
-- turn of its event loop (up to 64) in one call, instead of six statements each (begin, use the
-- token, read its family, insert the successor, touch the session, commit), and they commit
-- together. `batch` holds 80 bytes per rotation: the presented token's hash (32), its
-- successor's hash (32), then the time of the request and the successor's expiry (epoch
-- milliseconds, 8 bytes each, big-endian). The answer is one row, `answers`: a JSON array with,
-- per rotation in order, [rotated, user_id, family_id in hex, used_at, tokens_not_before] of the
-- presented token (rotated is 1 when this call used it; the rest null for an unknown token).
-- The row lock each UPDATE takes makes a concurrent rotation of the same token wait, then find
-- it used and change nothing. Any error (a deadlock; on Galera, lost certification) rolls the
-- whole call back, and the service runs it again. INVOKER: it runs with the caller's privileges,
-- so it does not depend on the account that created it.
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

-- migrate:down
DROP PROCEDURE IF EXISTS rotate_refresh_tokens;

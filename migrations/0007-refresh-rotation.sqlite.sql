-- migrate:up
-- Nothing: SQLite runs in the service's process, where a rotation's statements cost no round
-- trip (the MySQL side of this migration moves them into one stored procedure).

-- migrate:down

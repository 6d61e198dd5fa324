-- 009: the traceback of an effect's last failed attempt, next to last_error (bounded by the writer to a
-- few KB: the end of the traceback, where the failing frame and the exception are).

ALTER TABLE {schema}.outbox ADD COLUMN last_traceback text;

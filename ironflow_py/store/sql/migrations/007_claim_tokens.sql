-- 007: a claim token that never repeats. Every claim of an outbox row or a timer takes the next value of
-- one sequence; every later change of the claimed row is fenced on it. The old fence, (locked_by,
-- attempts), repeated once `dead-letters retry` reset attempts, so a stale attempt of the same worker id
-- could settle a row it no longer owned (design/reliability.md, class 4).
CREATE SEQUENCE {schema}.claim_tokens AS bigint;
ALTER TABLE {schema}.outbox ADD COLUMN claim_token bigint;
ALTER TABLE {schema}.timers ADD COLUMN claim_token bigint;

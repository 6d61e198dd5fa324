-- 010: projection leadership as a lease row with a fencing generation (design/projections.md), replacing the
-- session advisory lock. A session lock cannot work behind a transaction-mode pooler (it stays on a pooled
-- server connection after both workers die, and two workers can both "hold" it), and a frozen leader kept
-- it for as long as its connection lived. A lease ends by the database clock unless its holder renews it,
-- and every take bumps `fence`: a batch commits only while its worker's fence is still the row's.
CREATE TABLE {schema}.projection_leases (
    name        text        PRIMARY KEY,
    -- Who leads: "worker_id token" (the token tells apart two workers given the same worker_id).
    holder      text        NOT NULL,
    -- The fencing generation: bumped by every take-over, never by a renewal.
    fence       bigint      NOT NULL,
    -- The lease ends here (database clock); a standby takes over once now() passes it.
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    renewed_at  timestamptz NOT NULL DEFAULT now()
);

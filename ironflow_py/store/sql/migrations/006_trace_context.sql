-- 006: the W3C traceparent of the decision that wrote an effect or scheduled a timer, so the attempt or
-- firing that runs it later continues the same trace (design/operations.md). NULL when not tracing.
ALTER TABLE {schema}.outbox ADD COLUMN trace_context text;
ALTER TABLE {schema}.timers ADD COLUMN trace_context text;

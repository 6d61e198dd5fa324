-- 005: the event-append channel name is built by bytes, like the Python side (projections/_control.py).
-- 003 cut 'ironflow_events.' || schema at 63 characters; for a non-ASCII schema name that is more than 63
-- bytes, pg_notify refused it and every append failed. A name over 63 bytes now uses the schema's md5.
CREATE OR REPLACE FUNCTION {schema}.notify_event_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    channel text := 'ironflow_events.' || TG_TABLE_SCHEMA;
BEGIN
    IF octet_length(channel) > 63 THEN
        channel := 'ironflow_events.' || md5(TG_TABLE_SCHEMA);
    END IF;
    PERFORM pg_notify(channel, '');
    RETURN NULL;
END
$$;

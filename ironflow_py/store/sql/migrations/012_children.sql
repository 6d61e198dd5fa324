-- 012: composition (design/composition.md): a child instance records its parent and what it gets when
-- the parent closes first. Written once, by the transaction that creates the child (link_parent).

ALTER TABLE {schema}.instances
    ADD COLUMN parent_type         text,
    ADD COLUMN parent_id           text,
    ADD COLUMN parent_close_policy text
        CHECK (parent_close_policy IN ('request_cancel', 'terminate', 'abandon')),
    ADD CONSTRAINT instances_parent_whole
        CHECK ((parent_id IS NULL) = (parent_type IS NULL) AND (parent_id IS NULL) = (parent_close_policy IS NULL));
-- The parent-close sweep lists a parent's open children through this; it holds only children.
CREATE INDEX instances_by_parent ON {schema}.instances (parent_type, parent_id, status)
    WHERE parent_id IS NOT NULL;

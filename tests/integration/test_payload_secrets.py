"""Payload values stay out of logs and error messages (issue #11 item 7), on real PostgreSQL.

A stored payload that no longer decodes is reported by field and type; the value (here a secret-looking
string) appears in no error message, no log line and no logged traceback, unless `show_values` is set.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import DecodeError, EffectRuntime, PostgresStore, WorkflowService
from tests.effect_app import Job, Start, make_registry
from tests.workflows import Add, Counter

SECRET = "sk_live_51HxSECRETtokenVALUE"


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(getattr(record, "context", "")))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def test_an_effect_payload_that_no_longer_decodes_is_dead_lettered_without_its_value(
    pg_store: PostgresStore,
    admin: psycopg.Connection[Any],
    schema: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = WorkflowService(pg_store, workflows=[Job])
    service.execute(Start("j", 1, "noop"))
    # The stored effect now carries a secret where an int belongs (a schema change, a bad backfill).
    admin.execute(
        sql.SQL("UPDATE {}.outbox SET payload = jsonb_set(payload, '{{index}}', to_jsonb(%s::text))").format(
            sql.Identifier(schema)
        ),
        (SECRET,),
    )
    caplog.set_level(logging.DEBUG, logger="ironflow_py")
    rt = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, listen=False)
    assert rt.run_once() == 1
    (effect,) = pg_store.effects("job", "j")
    assert effect.status == "dead"
    assert effect.last_error is not None and "index" in effect.last_error and "int" in effect.last_error
    assert SECRET not in effect.last_error
    logged = everything_logged(caplog)
    assert "effect_attempt" in logged and "$.index" in logged  # the field is named
    assert SECRET not in logged


def test_an_event_that_no_longer_decodes_names_the_field_not_the_value(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str
) -> None:
    """Another member: replaying history (not an effect), with a value whose own exception quotes it."""
    service = WorkflowService(pg_store, workflows=[Counter], state_cache_size=0)
    service.execute(Add("c", 1))
    admin.execute(
        sql.SQL("UPDATE {}.events SET payload = %s::jsonb").format(sql.Identifier(schema)),
        (f'{{"amount": "{SECRET}", "unexpected": 1}}',),
    )
    with pytest.raises(DecodeError) as raised:
        service.execute(Add("c", 1))
    text = "".join(traceback.format_exception(raised.value))
    assert SECRET not in text
    assert "$.amount" in str(raised.value)  # the field is named


def test_show_values_is_an_opt_in_debug_setting(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str
) -> None:
    service = WorkflowService(pg_store, workflows=[Counter], state_cache_size=0, show_values=True)
    service.execute(Add("c", 1))
    admin.execute(
        sql.SQL("UPDATE {}.events SET payload = %s::jsonb").format(sql.Identifier(schema)),
        (f'{{"amount": "{SECRET}"}}',),
    )
    with pytest.raises(DecodeError) as raised:
        service.execute(Add("c", 1))
    assert SECRET in "".join(traceback.format_exception(raised.value))

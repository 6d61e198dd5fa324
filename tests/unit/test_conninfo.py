"""Multi-host connection strings (what `pg_autoctl show uri` prints) through `store/_conninfo.py`: the
password is masked in every form, the host list and `target_session_attrs` survive, and the session bounds
the store adds leave what the string sets alone. Parsing is psycopg.conninfo's (libpq's rules)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from ironflow_py.store._conninfo import mask_password, scrub, session_kwargs

SECRET = "s3cret-Pa55"
FORMS = {
    "uri": f"postgresql://app:{SECRET}@node1:5432,node2:5433/app?target_session_attrs=read-write",
    "uri, password in the query": (
        f"postgres://node1:5432,node2:5433/app?user=app&password={SECRET}&target_session_attrs=read-write"
    ),
    "key=value": (
        f"host=node1,node2 port=5432,5433 user=app password={SECRET} dbname=app target_session_attrs=read-write"
    ),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_multi_host_password_is_masked_and_the_host_list_kept(form: str) -> None:
    masked = mask_password(FORMS[form])
    assert SECRET not in masked and "password=***" in masked
    params = conninfo_to_dict(masked)
    assert (params["host"], params["port"]) == ("node1,node2", "5432,5433")
    assert params["target_session_attrs"] == "read-write"
    assert SECRET not in scrub(f"could not connect: {FORMS[form]}", FORMS[form])


def test_the_uri_pg_autoctl_prints_has_no_password_and_is_left_as_it_is() -> None:
    uri = "postgres://127.0.0.1:5432,127.0.0.1:5433/postgres?target_session_attrs=read-write&sslmode=prefer"
    assert mask_password(uri) == uri


def test_session_bounds_leave_what_a_multi_host_string_sets() -> None:
    uri = "postgres://node1:5432,node2:5433/app?target_session_attrs=read-write&connect_timeout=2"
    added = session_kwargs(uri)
    assert "connect_timeout" not in added  # per host: psycopg tries each with this timeout
    assert added["tcp_user_timeout"] > 0 and added["keepalives"] == 1
    assert "target_session_attrs" not in added and "host" not in added

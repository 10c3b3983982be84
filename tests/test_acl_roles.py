"""Least privileges: for each role, an ACL user with exactly the rules the documentation gives does the
role's work, on Redis and on Valkey.

The rules are read from the role table of docs/operations.md, so the documentation and this test
cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from test_cli import clean_env, run
from test_forward import Receiver

from records import TRACE_ID, make_record, span_context
from servers import ServerProcess, free_port, write_records

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
PASSWORD = "role-pw-7Qx"  # noqa: S105 (a test value, not a credential)
TRACE = f"{TRACE_ID:032x}"


def documented_rules() -> dict[str, list[str]]:
    """Role -> ACL rules, from the table between the acl-roles markers of the operations page."""
    text = OPERATIONS.read_text(encoding="utf-8")
    table = text.split("<!-- acl-roles -->", 1)[1].split("<!-- /acl-roles -->", 1)[0]
    roles: dict[str, list[str]] = {}
    for line in table.strip().splitlines()[2:]:
        role, rules = (cell.strip() for cell in line.strip("|").split("|", 1))
        words = re.findall(r"`([^`]+)`", rules.replace("\\|", "|"))
        roles[role] = [rule for word in words for rule in word.split() if rule[0] in "~+&%"]
        if "the reader's rules" in rules:
            roles[role] = [*roles["reader and CLI (`tail`, `trace`, `stats`)"], *roles[role]]
    return roles


RULES = documented_rules()
WRITER, INDEX_WRITER, READER, FORWARDER = RULES.values()


@pytest.fixture
def acl_user(server: ServerProcess, redis_url: str) -> Iterator[ServerProcess]:
    """Creates ``role-user`` with rules given later (``_grant``); deletes it after the test."""
    yield server
    with server.client() as client:
        client.execute_command("ACL", "DELUSER", "role-user")


def _grant(server: ServerProcess, rules: list[str]) -> None:
    with server.client() as client:
        client.execute_command("ACL", "SETUSER", "role-user", "reset", "on", f">{PASSWORD}", *rules)


def _write(url: str, **options: object) -> None:
    write_records([make_record(f"r{n}", context=span_context()) for n in range(5)], url=url, **options)


def test_the_readme_documents_four_roles() -> None:
    """The role table lists the writer, the trace index writer, the reader and the forwarder."""
    assert len(RULES) == 4
    assert WRITER == ["~otel:*", "+xadd"]
    assert set(WRITER) < set(INDEX_WRITER)
    assert set(READER) < set(FORWARDER)


def test_writer_rules_suffice(acl_user: ServerProcess, redis_client: redis.Redis) -> None:
    """The writer's rules write a batch; the user and password are given outside the URL."""
    _grant(acl_user, WRITER)
    _write(acl_user.url, username="role-user", password=PASSWORD)
    assert redis_client.xlen("otel:logs") == 5


def test_trace_index_writer_rules_suffice(acl_user: ServerProcess, redis_client: redis.Redis) -> None:
    """The trace index writer's rules write the entries and the index key."""
    _grant(acl_user, INDEX_WRITER)
    _write(acl_user.url, username="role-user", password=PASSWORD, trace_index_ttl=60)
    assert redis_client.llen(f"otel:logs:trace:{TRACE}") == 5
    assert redis_client.ttl(f"otel:logs:trace:{TRACE}") > 0


def test_reader_rules_suffice_for_every_cli_read(acl_user: ServerProcess) -> None:
    """tail, tail over a pattern, trace (with the index) and stats all work with the reader's rules."""
    _write(acl_user.url, trace_index_ttl=60)
    _grant(acl_user, READER)
    env = clean_env(
        OTEL_EXPORTER_REDIS_URL=acl_user.url,
        OTEL_EXPORTER_REDIS_USERNAME="role-user",
        OTEL_EXPORTER_REDIS_PASSWORD=PASSWORD,
    )
    for arguments, expected in [
        (["tail", "-n", "2"], "r4"),
        (["--pattern", "otel:*", "tail", "-n", "1"], "r4"),
        (["trace", TRACE], "r0"),
        (["stats"], "otel:logs"),
    ]:
        result = run(*arguments, env=env)
        assert result.returncode == 0, (arguments, result.stderr)
        assert expected in result.stdout, (arguments, result.stdout)


def test_forwarder_rules_suffice(acl_user: ServerProcess, redis_client: redis.Redis) -> None:
    """forward with a consumer group delivers every record and acknowledges it with the forwarder's rules."""
    _write(acl_user.url)
    _grant(acl_user, FORWARDER)
    receiver = Receiver(free_port()).start()
    try:
        env = clean_env(OTEL_EXPORTER_REDIS_USERNAME="role-user", OTEL_EXPORTER_REDIS_PASSWORD=PASSWORD)
        result = run(
            "forward",
            "--url",
            acl_user.url,
            "--endpoint",
            receiver.endpoint,
            "--group",
            "otlp",
            "--block-ms",
            "100",
            "--exit-when-idle",
            env=env,
        )
    finally:
        receiver.stop()
    assert result.returncode == 0, result.stderr
    assert sorted(receiver.bodies()) == [f"r{n}" for n in range(5)]
    assert redis_client.xpending("otel:logs", "otlp")["pending"] == 0

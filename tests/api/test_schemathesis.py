"""Schemathesis against /openapi.json: every operation, fuzzed, answers as it says it does.

Schemathesis' own pytest plugin does not run under pytest 9 (it reads a private attribute
pytest dropped), so each operation's hypothesis strategy is driven here directly.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from carpay.api import create_app
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.services.platform import deploy_platform
from carpay.settings import Settings


@pytest.fixture
def api_schema(database, clock, ticker, embedded, tmp_path):
    chain = Chain(embedded.url, state_dir=tmp_path)
    owner, treasury = dev_accounts(count=2)
    deploy_platform(chain, owner, treasury=treasury.address)  # so that payments are checked
    app = create_app(
        database,
        chain,
        Settings(rate_limit=5.0, rate_burst=10**9, chain_id=1337),
        clock=clock,
        monotonic=ticker,
        relayer_address="0x" + "11" * 20,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_answers_as_documented(api_schema, admin):
    failures = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        # An address that matches the schema's pattern may still fail its EIP-55 checksum, a
        # well-formed signature may be nobody's, and the fuzzer reuses an Idempotency-Key with
        # another body, which no JSON Schema can say: a 422 for them is right, not a schema
        # violation.
        checksummed = operation.label in (
            "POST /v1/transfers",
            "POST /v1/payments",
            "POST /v1/holds",
            "POST /v1/merchants",
            "POST /v1/invoices",
            "POST /v1/refunds",
            "POST /v1/holds/{hold_id}/capture",
            "POST /v1/holds/{hold_id}/void",
            "POST /v1/fines",
            "POST /v1/fines/{fine_id}/waive",
            "POST /v1/fines/{fine_id}/pay",
            "POST /v1/policies",
            "POST /v1/policies/{policy_id}/claims",
            "POST /v1/policies/{policy_id}/accept",
            "POST /v1/policies/{policy_id}/cancel",
            "POST /v1/escrows",
            "POST /v1/escrows/{escrow_id}/fund",
            "POST /v1/escrows/{escrow_id}/title",
            "POST /v1/escrows/{escrow_id}/{action}",
            "GET /v1/vehicle-wallets/{wallet}",
            "POST /v1/vehicle-wallets",
            "POST /v1/vehicle-wallets/{wallet}/limits",
            "POST /v1/vehicle-wallets/{wallet}/categories",
            "POST /v1/vehicle-wallets/{wallet}/frozen",
            "POST /v1/vehicle-wallets/{wallet}/device-key",
            "POST /v1/vehicles",
            "POST /v1/participants",
        )
        check = _fuzz(operation, admin, [positive_data_acceptance] if checksummed else [])
        try:
            check()
        except Exception as exc:  # noqa: BLE001 (every operation's failure is reported)
            failures[operation.label] = exc
    assert not failures, "\n\n".join(f"{label}:\n{exc}" for label, exc in failures.items())


def _fuzz(operation, headers, excluded):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case):
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    return check

"""Tests of carpay/accounts/api_keys.py: hashed at rest, shown once, scoped, revocable."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from carpay.accounts.api_keys import ApiKeys, Principal
from carpay.errors import NotAuthorized, NotFound, Unauthenticated, ValidationFailed
from carpay.ledger.models import ApiKey


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def keys(clock):
    return ApiKeys(clock=clock)


def test_created_key_verifies_and_only_its_hash_is_stored(database, keys):
    with database.begin() as s:
        new = keys.create(s, name="shop", owner="m1", scopes=["transfers:write"])
    assert new.secret.startswith(f"cpk_{new.key.prefix}_")
    assert new.secret not in repr(new)
    with database.begin() as s:
        row = s.get(ApiKey, new.key.id)
        stored = [str(v) for v in (row.prefix, row.secret_hash, row.name, row.owner)]
        assert all(new.secret not in v for v in stored)
        assert row.secret_hash == hashlib.sha256(new.secret.encode()).hexdigest()
        principal = keys.verify(s, new.secret)
    assert principal == Principal(new.key.id, "m1", frozenset({"transfers:write"}))


@pytest.mark.parametrize("scopes", [["nope"], []])
def test_bad_scopes_are_refused(database, keys, scopes):
    with pytest.raises(ValidationFailed), database.begin() as s:
        keys.create(s, name="x", owner="m1", scopes=scopes)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "cpk_0000000000000000_" + t.split("_", 2)[2],  # unknown prefix
        lambda t: "Bearer " + t,  # not a key
        lambda t: "",
    ],
)
def test_wrong_tokens_are_unauthenticated_and_never_echoed(database, keys, mangle):
    with database.begin() as s:
        token = mangle(keys.create(s, name="x", owner="m1", scopes=["admin"]).secret)
    with pytest.raises(Unauthenticated) as info, database.begin() as s:
        keys.verify(s, token)
    if token:
        assert token not in str(info.value)


def test_revoked_keys_no_longer_verify(database, keys, clock):
    with database.begin() as s:
        new = keys.create(s, name="x", owner="m1", scopes=["admin"])
    with database.begin() as s:
        first = keys.revoke(s, new.key.id).revoked_at
    clock.now += timedelta(hours=1)
    with database.begin() as s:
        assert keys.revoke(s, new.key.id).revoked_at == first
    with pytest.raises(Unauthenticated), database.begin() as s:
        keys.verify(s, new.secret)


def test_revoking_an_unknown_key_is_not_found(database, keys):
    with pytest.raises(NotFound), database.begin() as s:
        keys.revoke(s, 12345)


def test_last_used_is_recorded_at_most_once_a_minute(database, keys, clock):
    with database.begin() as s:
        new = keys.create(s, name="x", owner="m1", scopes=["admin"])
    with database.begin() as s:
        keys.verify(s, new.secret)
    first = clock.now
    clock.now += timedelta(seconds=30)
    with database.begin() as s:
        keys.verify(s, new.secret)
        assert s.get(ApiKey, new.key.id).last_used_at == first
    clock.now += timedelta(seconds=31)
    with database.begin() as s:
        keys.verify(s, new.secret)
        assert s.get(ApiKey, new.key.id).last_used_at == clock.now


def test_scopes_admin_implies_all():
    admin = Principal(1, "platform", frozenset({"admin"}))
    reader = Principal(2, "m1", frozenset({"webhooks:read"}))
    admin.require("webhooks:write")
    reader.require("webhooks:read")
    with pytest.raises(NotAuthorized, match="webhooks:write"):
        reader.require("webhooks:write")


def test_list_pages_newest_first_by_owner(database, keys):
    with database.begin() as s:
        ids = [keys.create(s, name=f"k{i}", owner="m1", scopes=["admin"]).key.id for i in range(5)]
        keys.create(s, name="other", owner="m2", scopes=["admin"])
    with database.begin() as s:
        first = keys.list(s, owner="m1", limit=2)
        assert [k.id for k in first.items] == ids[::-1][:2]
        assert first.has_more
        rest = keys.list(s, owner="m1", limit=10, after=first.next_after)
        assert [k.id for k in rest.items] == ids[::-1][2:]
        assert not rest.has_more
        assert s.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 6


def test_has_active(database, keys):
    with database.begin() as s:
        assert not keys.has_active(s, "admin")
        new = keys.create(s, name="x", owner="platform", scopes=["admin"])
        assert keys.has_active(s, "admin")
        keys.revoke(s, new.key.id)
        assert not keys.has_active(s, "admin")

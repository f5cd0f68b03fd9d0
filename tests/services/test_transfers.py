"""Tests of carpay/services/transfers.py and outbox.py: intents written before any sending."""

from __future__ import annotations

import pytest

from carpay.errors import NotFound, ValidationFailed
from carpay.services.outbox import Outbox
from carpay.services.transfers import Transfers, erc20_transfer_data

TO = "0x" + "ab" * 20
TOKEN = "0x" + "cd" * 20


@pytest.fixture
def transfers():
    return Transfers(Outbox(sender="0x" + "11" * 20, chain_id=lambda: 1337))


def test_ether_transfer_is_a_pending_intent_with_value(database, transfers):
    with database.begin() as s:
        intent = transfers.request(s, owner="m1", to=TO, amount_minor=5)
    assert (intent.state, intent.value, intent.data, intent.chain_id) == ("pending", 5, b"", 1337)
    assert intent.to_address == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    assert intent.details == {"to": intent.to_address, "amount_minor": 5, "token": None}


def test_token_transfer_calls_the_token(database, transfers):
    with database.begin() as s:
        intent = transfers.request(s, owner="m1", to=TO, amount_minor=7, token=TOKEN)
    assert intent.value == 0
    assert intent.to_address.lower() == TOKEN
    assert intent.data.hex() == "a9059cbb" + "00" * 12 + "ab" * 20 + f"{7:064x}"
    assert intent.data == erc20_transfer_data(intent.details["to"], 7)


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"to": "0x123", "amount_minor": 1}, "to"),
        ({"to": TO, "amount_minor": 0}, "amount_minor"),
        ({"to": TO, "amount_minor": 2**256}, "amount_minor"),
        ({"to": TO, "amount_minor": 1, "token": "nope"}, "token"),
        ({"to": "0x" + "ab" * 19 + "aB", "amount_minor": 1}, "to"),  # a wrong EIP-55 checksum
    ],
)
def test_invalid_transfers_are_refused(database, transfers, kw, field):
    with pytest.raises(ValidationFailed) as info, database.begin() as s:
        transfers.request(s, owner="m1", **kw)
    assert info.value.errors[0]["loc"] == [field]


def test_transfers_are_visible_to_their_owner_only(database, transfers):
    with database.begin() as s:
        intent = transfers.request(s, owner="m1", to=TO, amount_minor=5)
    with database.begin() as s:
        assert transfers.get(s, intent.id, owner="m1").id == intent.id
        with pytest.raises(NotFound):
            transfers.get(s, intent.id, owner="m2")
        assert [i.id for i in transfers.list(s, owner="m1").items] == [intent.id]
        assert transfers.list(s, owner="m2").items == []

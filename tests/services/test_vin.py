"""carpay/services/vin.py: ISO 3779 VINs, the North-American check digit, typed refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carpay.errors import InvalidVin, ValidationFailed
from carpay.services.vin import _VALUES, check_digit, is_north_american, validate_vin

#: North-American VINs with a correct check digit (position 9): two real, published VINs,
#: the classic all-ones test VIN, and VINs of each North-American region with the check
#: digit worked out by hand.
VALID_NORTH_AMERICAN = [
    "1HGCM82633A004352",  # Honda Accord (United States), check digit 3
    "1M8GDM9AXKP042788",  # Motor Coach Industries bus, check digit X
    "11111111111111111",  # 8+7+6+5+4+3+2+10+9+8+7+6+5+4+3+2 = 89 = 8*11 + 1
    "2HGFG12838H563518",  # Canada, check digit 3
    "3VWFE21C04M000001",  # Mexico, check digit 0
    "4T1BF1FK0CU123456",  # United States, check digit 0
    "5YJSA1E18HF000337",  # United States, check digit 8
]

ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@pytest.mark.parametrize("vin", VALID_NORTH_AMERICAN)
def test_real_north_american_vins_are_valid(vin):
    assert validate_vin(vin) == vin
    assert is_north_american(vin)
    assert check_digit(vin) == vin[8]


@pytest.mark.parametrize(
    "vin",
    [
        "WVWZZZ1JZXW000001",  # Volkswagen Golf (Germany): position 9 is not a check digit
        "JHMCM56557C404453",  # Honda (Japan)
        "SALGA2EF9EA123456",  # Land Rover (United Kingdom)
        "VF1RFB00X56123456",  # Renault (France)
        "ZFA22300005556777",  # Fiat (Italy)
    ],
)
def test_vins_outside_north_america_skip_the_check_digit(vin):
    assert not is_north_american(vin)
    assert validate_vin(vin) == vin


def test_the_canonical_form_is_stripped_and_upper_case():
    assert validate_vin("  1hgcm82633a004352\n") == "1HGCM82633A004352"


@pytest.mark.parametrize(
    ("vin", "expected"),
    [
        ("1HGCM82643A004352", "'4' does not match the VIN (expected '3')"),
        ("1M8GDM9A9KP042788", "'9' does not match the VIN (expected 'X')"),
        ("5YJSA1E15HF000337", "'5' does not match the VIN (expected '8')"),
    ],
)
def test_a_wrong_check_digit_is_refused(vin, expected):
    with pytest.raises(InvalidVin) as info:
        validate_vin(vin)
    assert expected in info.value.message


@pytest.mark.parametrize("letter", "IOQ")
def test_i_o_and_q_are_refused(letter):
    vin = "WVWZZZ1JZXW00000" + letter
    with pytest.raises(InvalidVin) as info:
        validate_vin(vin)
    assert repr(letter) in info.value.message
    with pytest.raises(InvalidVin):
        validate_vin(vin.lower())


@pytest.mark.parametrize(
    "vin",
    ["", "1HGCM82633A00435", "1HGCM82633A0043521", "WVWZZZ1JZXW00000-", "WVWZZZ1JZXW 00001", 17],
)
def test_wrong_length_and_characters_are_refused(vin):
    with pytest.raises(InvalidVin):
        validate_vin(vin)


def test_invalid_vin_is_a_typed_validation_error():
    with pytest.raises(ValidationFailed) as info:
        validate_vin("1HGCM82643A004352")
    error = info.value
    assert isinstance(error, InvalidVin)
    assert error.code == "invalid-vin"
    assert error.status == 422
    assert error.errors == [
        {"loc": ["vin"], "msg": "check digit '4' does not match the VIN (expected '3')"}
    ]
    assert error.message.startswith("invalid VIN: ")


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_exactly_one_check_digit_makes_a_north_american_vin_valid(vin):
    vin = "1" + vin[1:]
    valid = [d for d in "0123456789X" if _accepts(vin[:8] + d + vin[9:])]
    assert valid == [check_digit(vin)]


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17), st.integers(0, 16))
def test_changing_one_character_breaks_the_check_digit(vin, position):
    """The weights are coprime to 11, so one changed character (of a different value) is caught."""
    vin = "1" + vin[1:]
    vin = vin[:8] + check_digit(vin) + vin[9:]
    if position in (0, 8):
        return
    for other in ALPHABET:
        changed = vin[:position] + other + vin[position + 1 :]
        if check_digit(changed) == check_digit(vin) and changed != vin:
            # Only letters that stand for the same digit (e.g. A and J) go unnoticed.
            assert _VALUES[other] == _VALUES[vin[position]]


def _accepts(vin: str) -> bool:
    try:
        validate_vin(vin)
    except InvalidVin:
        return False
    return True

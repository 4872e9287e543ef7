"""Tests of UK plate normalisation, format recognition and confusion correction (edge.plates)."""

from __future__ import annotations

from string import ascii_uppercase, digits

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge.plates
from cordon.errors import CordonError
from edge.errors import PlateTextError
from edge.plates import NI_AREA_CODES, PLATE_FORMATS, PlateFormat, normalise_plate, plate_format

# Researched independently of the module: Northern Ireland's I-series codes and the AZ-YZ series.
NI_CODES = sorted(
    [
        *["IA", "IB", "IG", "IJ", "IL", "IW", "JI", "OI", "UI", "XI"],
        *["AZ", "BZ", "CZ", "DZ", "EZ", "FZ", "GZ", "HZ", "JZ", "KZ", "LZ", "MZ"],
        *["NZ", "OZ", "PZ", "RZ", "SZ", "TZ", "UZ", "VZ", "WZ", "XZ", "YZ"],
    ]
)
# The letter/digit pairs that OCR confuses in both directions.
SWAP = {"O": "0", "I": "1", "B": "8", "S": "5", "Z": "2", "G": "6"}
SWAP |= {d: letter for letter, d in SWAP.items()}


def letters(excluded: str = "") -> st.SearchStrategy[str]:
    return st.sampled_from([c for c in ascii_uppercase if c not in excluded])


def serial(high: int) -> st.SearchStrategy[str]:
    return st.integers(1, high).map(str)


def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


current_plates = joined(
    letters("IQZ"), letters("IQZ"), st.sampled_from(digits), st.sampled_from(digits), *[letters("IQ")] * 3
)
prefix_plates = joined(letters("IOUZ"), serial(999), letters(), letters(), letters())
suffix_plates = joined(letters(), letters(), letters(), serial(999), letters("IOQUZ"))
ni_plates = st.one_of(
    joined(st.sampled_from(["", *ascii_uppercase]), st.sampled_from(NI_CODES), serial(9999)),
    joined(serial(9999), st.sampled_from(NI_CODES)),
)
# No I or Z, so that no generated dateless mark holds a Northern Ireland area code.
_dateless_letters = st.lists(letters("IZ"), min_size=1, max_size=3).map("".join)
dateless_plates = st.one_of(joined(_dateless_letters, serial(9999)), joined(serial(9999), _dateless_letters))

FORMAT_STRATEGIES: dict[PlateFormat, st.SearchStrategy[str]] = {
    "current": current_plates,
    "prefix": prefix_plates,
    "suffix": suffix_plates,
    "northern_ireland": ni_plates,
    "dateless": dateless_plates,
}
formatted_plates: st.SearchStrategy[tuple[PlateFormat, str]] = st.one_of(
    [st.tuples(st.just(fmt), strategy) for fmt, strategy in FORMAT_STRATEGIES.items()]
)
alnum_texts = st.text(alphabet=ascii_uppercase + digits, min_size=1, max_size=10)


@st.composite
def decorated(draw: st.DrawFn, text: str) -> str:
    """``text`` with random case and random spaces and punctuation around its characters."""
    separators = st.sampled_from(["", "", " ", "-", ".", "  ", "·", "/"])
    out = draw(separators)
    for ch in text:
        out += (ch.lower() if draw(st.booleans()) else ch) + draw(separators)
    return out


def test_public_api_is_pinned() -> None:
    assert set(edge.plates.__all__) == {
        "MAX_PLATE_LENGTH",
        "NI_AREA_CODES",
        "PLATE_FORMATS",
        "NormalisedPlate",
        "PlateFormat",
        "normalise_plate",
        "plate_format",
    }


def test_ni_area_codes_are_the_researched_list() -> None:
    assert sorted(NI_AREA_CODES) == NI_CODES
    assert set(PLATE_FORMATS) == set(FORMAT_STRATEGIES)


@pytest.mark.parametrize(
    ("raw", "text", "fmt"),
    [
        ("AB12 CDE", "AB12CDE", "current"),
        ("ab12-cde", "AB12CDE", "current"),
        (" ab 12 cZe ", "AB12CZE", "current"),  # Z is allowed among the random letters
        ("A123 BCD", "A123BCD", "prefix"),
        ("A1 BCD", "A1BCD", "prefix"),
        ("Q123 ABC", "Q123ABC", "prefix"),  # Q plate: vehicle of unknown age
        ("ABC 123D", "ABC123D", "suffix"),
        ("ABC 1Y", "ABC1Y", "suffix"),
        ("AZ 1234", "AZ1234", "northern_ireland"),
        ("KIA 123", "KIA123", "northern_ireland"),
        ("1234 AZ", "1234AZ", "northern_ireland"),
        ("LIZ 1234", "LIZ1234", "dateless"),  # IZ is no Northern Ireland code
        ("ZZ 1234", "ZZ1234", "dateless"),  # nor is ZZ (Irish Free State series)
        ("A 1", "A1", "dateless"),
        ("1 A", "1A", "dateless"),
        ("ABC 123", "ABC123", "dateless"),
        ("RG 0", "RG0", "dateless"),  # civic zero mark
    ],
)
def test_valid_marks_are_kept_with_their_format(raw: str, text: str, fmt: PlateFormat) -> None:
    result = normalise_plate(raw)
    assert (result.raw, result.text, result.format, result.corrections) == (raw, text, fmt, 0)


@pytest.mark.parametrize(
    ("raw", "text", "fmt", "corrections"),
    [
        ("AB1Z CDE", "AB12CDE", "current", 1),  # Z read for 2 in the age identifier
        ("AB12 CD8", "AB12CDB", "current", 1),  # 8 read for B in the random letters
        ("AB12 5DE", "AB12SDE", "current", 1),
        ("ABD2 CDE", "AB02CDE", "current", 1),  # D becomes 0 where a digit is needed
        ("A8C 123D", "ABC123D", "suffix", 1),
        ("A2 1234", "AZ1234", "northern_ireland", 1),
        ("0B12 CDE", "OB12CDE", "current", 1),
        ("AI12 CDE", "A112CDE", "prefix", 1),  # I is never in a current mark, so 1 it is
        ("OOOOOOO", "OO00OOO", "current", 2),
    ],
)
def test_unambiguous_confusions_are_corrected(
    raw: str, text: str, fmt: PlateFormat, corrections: int
) -> None:
    result = normalise_plate(raw)
    assert (result.text, result.format, result.corrections) == (text, fmt, corrections)
    assert result.raw == raw


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("12345", "12345"),  # I2345 and 1234S tie
        ("8B33DPH", "8B33DPH"),  # BB33DPH and 8833DPH tie
        ("ABCDEFG", "ABCDEFG"),  # no format reachable by letter/digit swaps
        ("A", "A"),
        ("AB12CDEFGH", "AB12CDEFGH"),  # longer than any format
    ],
)
def test_ambiguous_or_hopeless_texts_are_not_corrected(raw: str, text: str) -> None:
    result = normalise_plate(raw)
    assert (result.text, result.format, result.corrections) == (text, None, 0)


def test_max_corrections_limits_the_substitutions() -> None:
    assert normalise_plate("OOOOOOO", max_corrections=1).format is None
    assert normalise_plate("AB1ZCDE", max_corrections=0).text == "AB1ZCDE"
    assert normalise_plate("AB1ZCDE", max_corrections=1).text == "AB12CDE"
    with pytest.raises(ValueError, match="max_corrections"):
        normalise_plate("AB12CDE", max_corrections=-1)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("AB12CDE", "current"),
        ("AI12CDE", None),  # I not in a memory tag
        ("AZ12CDE", None),  # Z not in a memory tag
        ("AB12CIE", None),  # I not among the random letters
        ("AB12CQE", None),
        ("I123ABC", None),  # I, O, U and Z were never prefix year letters
        ("O123ABC", None),
        ("U123ABC", None),
        ("ABC123Q", None),  # nor suffix year letters, which also skip Q
        ("A012BCD", None),  # serial numbers have no leading zeros
        ("AZ0123", None),
        ("S0", "dateless"),
        ("AB0", None),  # only the civic marks have a zero serial
        ("ab12cde", None),  # not normalised
        ("AB12 CDE", None),
        ("", None),
    ],
)
def test_plate_format(text: str, fmt: PlateFormat | None) -> None:
    assert plate_format(text) == fmt


@pytest.mark.parametrize("raw", ["", "   ", "-.-/", "ABCDEFGHIJK", "AB12 CDE - AB12", "ÄÖÜ", "\u0131\u0131"])
def test_unusable_text_raises_plate_text_error_naming_the_input(raw: str) -> None:
    with pytest.raises(PlateTextError) as info:
        normalise_plate(raw)
    assert repr(raw) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CordonError)


def test_ten_characters_are_accepted() -> None:
    assert normalise_plate("ABCDEFGHIJ").text == "ABCDEFGHIJ"


@settings(max_examples=300)
@given(formatted_plates)
def test_every_valid_mark_maps_to_itself_with_its_format(case: tuple[PlateFormat, str]) -> None:
    fmt, text = case
    result = normalise_plate(text)
    assert (result.text, result.format, result.corrections) == (text, fmt, 0)
    assert plate_format(text) == fmt


@given(
    st.one_of(formatted_plates.map(lambda c: c[1]), alnum_texts).flatmap(
        lambda t: st.tuples(st.just(t), decorated(t))
    )
)
def test_case_spaces_and_punctuation_do_not_change_the_result(case: tuple[str, str]) -> None:
    clean, noisy = case
    expected, result = normalise_plate(clean), normalise_plate(noisy)
    assert (result.text, result.format, result.corrections) == (
        expected.text,
        expected.format,
        expected.corrections,
    )
    assert result.raw == noisy


@settings(max_examples=300)
@given(alnum_texts)
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise_plate(text)
    twice = normalise_plate(once.text)
    assert (twice.text, twice.format) == (once.text, once.format)
    if once.format is not None:
        assert twice.corrections == 0


@settings(max_examples=300)
@given(alnum_texts)
def test_corrections_are_counted_substitutions_that_reach_a_format(text: str) -> None:
    result = normalise_plate(text)
    assert len(result.text) == len(text)
    assert result.format == plate_format(result.text)
    changed = sum(a != b for a, b in zip(result.text, text, strict=True))
    assert changed == result.corrections <= 2
    if result.corrections:
        assert plate_format(text) is None
        assert result.format is not None
    if result.format is None:
        assert result.text == text


@given(st.text(max_size=24))
def test_text_never_gets_longer(raw: str) -> None:
    kept = [c for c in raw if c.isascii() and c.isalnum()]
    try:
        result = normalise_plate(raw)
    except PlateTextError:
        assert not kept or len(kept) > 10
    else:
        assert len(result.text) == len(kept) <= len(raw)
        assert set(result.text) <= set(ascii_uppercase + digits)


@settings(max_examples=300)
@given(formatted_plates, st.data())
def test_a_single_confusion_is_corrected_back_or_left_alone(
    case: tuple[PlateFormat, str], data: st.DataObject
) -> None:
    _, original = case
    positions = [i for i, c in enumerate(original) if c in SWAP]
    if not positions:
        return
    pos = data.draw(st.sampled_from(positions))
    corrupted = original[:pos] + SWAP[original[pos]] + original[pos + 1 :]
    result = normalise_plate(corrupted)
    if plate_format(corrupted) is not None:
        # The confusion made another valid mark: nothing tells it apart from a true read.
        assert result.text == corrupted
    else:
        # The original is one substitution away, so the only other outcome is a tie left alone.
        assert result.text in {original, corrupted}
        if result.text == original:
            assert (result.corrections, result.format) == (1, plate_format(original))
        else:
            assert result.format is None


@settings(max_examples=300)
@given(current_plates, st.data())
def test_a_single_confusion_in_a_current_mark_is_always_corrected(original: str, data: st.DataObject) -> None:
    # Position 1 is excluded: a digit there makes a valid prefix mark (AB12CDE -> A812CDE). So is position 0
    # when position 1 has a digit twin: 8B33DPH is one swap from BB33DPH and from the dateless 8833DPH.
    ambiguous = {1} if original[1] not in "BDGOS" else {0, 1}
    positions = [i for i, c in enumerate(original) if c in SWAP and i not in ambiguous]
    if not positions:
        return
    pos = data.draw(st.sampled_from(positions))
    corrupted = original[:pos] + SWAP[original[pos]] + original[pos + 1 :]
    result = normalise_plate(corrupted)
    assert (result.text, result.format, result.corrections) == (original, "current", 1)

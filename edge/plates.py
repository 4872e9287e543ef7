"""UK registration mark normalisation, format recognition and OCR confusion correction (pure, no I/O).

Formats
-------
Each format is written below as character classes, left to right. ``L`` is any letter A-Z, ``D`` any digit
0-9, and ``N`` a digit 1-9. ``N`` starts every serial number, because issued serial numbers run from 1 upwards
and are never shown with leading zeros.

``current`` (Great Britain, September 2001 on), e.g. ``AB12CDE``: ``T T D D R R R``.
    ``T``, the local memory tag, is a letter other than I, Q or Z. ``R``, the random letters, is a letter
    other than I or Q (Z is allowed here). The two age-identifier digits are not checked against the issue
    calendar: that would make the result depend on today's date.
``prefix`` (1983-2001), e.g. ``A123BCD``: ``Y N D{0,2} L L L``.
    ``Y``, the year letter, is any letter but I, O, U or Z. The year letters ran A to Y and skipped I, O, Q,
    U and Z, but Q is used on the same layout for vehicles of unknown age ("Q plates", e.g. ``Q123ABC``).
``suffix`` (1963-1983), e.g. ``ABC123D``: ``L L L N D{0,2} S``.
    ``S``, the suffix year letter, is A to Y without I, O, Q, U or Z.
``northern_ireland``, e.g. ``AZ1234``, ``KIA123`` or ``1234AZ``: ``L? C N D{0,3}`` or ``N D{0,3} C``.
    ``C`` is a two-letter Northern Ireland area code. These are ``IA``, ``IB``, ``IG``, ``IJ``, ``IL``,
    ``IW``, ``JI``, ``OI``, ``UI``, ``XI`` and the Z series ``AZ`` to ``YZ`` without ``IZ`` and ``QZ``.
    (The Irish Free State took ``ZA`` to ``ZZ``, and codes such as ``IK``, Dublin, never were Northern
    Irish.) The reversed order, digits first, is the 1958-1966 NI series and takes the two-letter code
    only. Because this rule uses the list of NI codes, ``LIZ1234`` is ``dateless``, not
    ``northern_ireland``.
``dateless`` (1903-1963 style, including reversed marks): ``L{1,3} N D{0,3}`` or ``N D{0,3} L{1,3}``,
    e.g. ``A1`` or ``1234AB``. Any letters are allowed. There are also the civic ``0`` marks ``S0``, ``G0``,
    ``RG0`` and ``LB0``, which are the only marks with a zero serial. They are recognised as they are and are
    never the target of a correction.

A text that fits ``northern_ireland`` also fits the ``dateless`` layout. :func:`plate_format` tests the
formats in the order above, so the more specific format is the one reported. Personalised marks appear only
in these layouts, so they need no format of their own. Diplomatic (``123D456``), trade and military marks
are not recognised.

Correction
----------
OCR engines confuse letters and digits that look alike in the Charles Wright plate font. Each letter has at
most one digit it is confused with, and each digit at most one letter, so a substitution never has to choose:

====================  ==============================================
letter read, digit    O→0, D→0, Q→0, I→1, Z→2, S→5, G→6, B→8
digit read, letter    0→O, 1→I, 2→Z, 5→S, 6→G, 8→B
====================  ==============================================

D and Q become 0 where a format needs a digit. In the other direction 0 only becomes O: on a plate, D and Q
are read far more often than they are misread. A substitution is allowed only where a format needs the other
kind of character at that position, and only if the new character is allowed there. For example, 1→I is
never made inside a ``current`` mark, and O→0 is never made as the first digit of a serial number. Letter to
letter and digit to digit changes are never made, and neither is any change of length.

:func:`normalise_plate` corrects a text only when the correction is unambiguous:

1. A text that already fits a format is kept as it is.
2. Otherwise every layout of every format (each split between letters and digits, each NI code) with the
   same length as the text is tried. The corrected texts that need the fewest substitutions are collected.
3. If exactly one distinct text needs that fewest number, and that number is at most ``max_corrections``,
   that text is the result. Otherwise nothing is corrected and ``format`` is None.

No format is preferred over another. ``current`` marks are the most common on the road, but a prior that
breaks ties would turn an ambiguous read into a confident wrong one. That is worse for hotlist matching than
passing the uncorrected text on, because matching downstream can still search it fuzzily.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from string import ascii_uppercase, digits
from typing import Literal, TypeAlias

from edge.errors import PlateTextError

__all__ = [
    "MAX_PLATE_LENGTH",
    "NI_AREA_CODES",
    "PLATE_FORMATS",
    "NormalisedPlate",
    "PlateFormat",
    "normalise_plate",
    "plate_format",
]

PlateFormat: TypeAlias = Literal["current", "prefix", "suffix", "northern_ireland", "dateless"]
"""A UK registration mark layout; see the module docstring for the exact rules."""

PLATE_FORMATS: tuple[PlateFormat, ...] = ("current", "prefix", "suffix", "northern_ireland", "dateless")
"""Every format, in the order :func:`plate_format` tests them (most specific first)."""

MAX_PLATE_LENGTH = 10
"""Longest normalised text accepted. UK marks have at most 7 characters; the slack allows OCR noise."""

NI_AREA_CODES: frozenset[str] = frozenset(
    {"IA", "IB", "IG", "IJ", "IL", "IW", "JI", "OI", "UI", "XI"}
    | {f"{letter}Z" for letter in ascii_uppercase if letter not in "IQZ"}
)
"""Two-letter area codes used in Northern Ireland."""

_LETTERS = frozenset(ascii_uppercase)
_DIGITS = frozenset(digits)
_NONZERO = frozenset("123456789")
_MEMORY_TAG = _LETTERS - frozenset("IQZ")
_RANDOM = _LETTERS - frozenset("IQ")
_PREFIX_YEAR = _LETTERS - frozenset("IOUZ")
_SUFFIX_YEAR = _LETTERS - frozenset("IOQUZ")
_CIVIC_ZERO_MARKS = frozenset({"S0", "G0", "RG0", "LB0"})

_LETTER_TO_DIGIT: dict[str, str] = {
    "O": "0",
    "D": "0",
    "Q": "0",
    "I": "1",
    "Z": "2",
    "S": "5",
    "G": "6",
    "B": "8",
}
_DIGIT_TO_LETTER: dict[str, str] = {"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}
_CONFUSION: dict[str, str] = {**_LETTER_TO_DIGIT, **_DIGIT_TO_LETTER}

_Layout: TypeAlias = tuple[frozenset[str], ...]
_NI_FIRST = frozenset(code[0] for code in NI_AREA_CODES)
_NI_SECOND = frozenset(code[1] for code in NI_AREA_CODES)


@dataclass(frozen=True, slots=True)
class _Shape:
    """One layout of one format: allowed characters per position, plus where an NI area code sits."""

    format: PlateFormat
    layout: _Layout
    area_at: int | None = None

    def admits(self, text: str) -> bool:
        """Whether ``text`` (already fitting ``layout``) has a valid NI area code where one is needed."""
        return self.area_at is None or text[self.area_at : self.area_at + 2] in NI_AREA_CODES


@dataclass(frozen=True, slots=True)
class NormalisedPlate:
    """A plate text after normalisation.

    Attributes
    ----------
    raw
        The input, exactly as given.
    text
        Upper-case A-Z/0-9 only, corrected if a correction was unambiguous.
    format
        The UK format ``text`` fits, or None if it fits none.
    corrections
        Number of characters changed by the letter/digit confusion correction, 0 if none.
    """

    raw: str
    text: str
    format: PlateFormat | None
    corrections: int


def _serial(length: int) -> _Layout:
    """Character classes of a serial number of ``length`` digits, 1-9 first (no leading zeros)."""
    return (_NONZERO, *([_DIGITS] * (length - 1)))


def _build_shapes() -> dict[int, list[_Shape]]:
    """Every layout of every format, grouped by length, in :data:`PLATE_FORMATS` order."""
    shapes = [_Shape("current", (_MEMORY_TAG, _MEMORY_TAG, _DIGITS, _DIGITS, _RANDOM, _RANDOM, _RANDOM))]
    for n in range(1, 4):
        shapes.append(_Shape("prefix", (_PREFIX_YEAR, *_serial(n), _LETTERS, _LETTERS, _LETTERS)))
    for n in range(1, 4):
        shapes.append(_Shape("suffix", (_LETTERS, _LETTERS, _LETTERS, *_serial(n), _SUFFIX_YEAR)))
    area = (_NI_FIRST, _NI_SECOND)
    for n in range(1, 5):
        shapes.append(_Shape("northern_ireland", (*area, *_serial(n)), area_at=0))
        shapes.append(_Shape("northern_ireland", (_LETTERS, *area, *_serial(n)), area_at=1))
        shapes.append(_Shape("northern_ireland", (*_serial(n), *area), area_at=n))
    for letters in range(1, 4):
        for n in range(1, 5):
            shapes.append(_Shape("dateless", (*([_LETTERS] * letters), *_serial(n))))
            shapes.append(_Shape("dateless", (*_serial(n), *([_LETTERS] * letters))))
    by_length: dict[int, list[_Shape]] = defaultdict(list)
    for shape in shapes:
        by_length[len(shape.layout)].append(shape)
    return dict(by_length)


_SHAPES = _build_shapes()


def _fits(text: str, layout: _Layout) -> bool:
    return all(ch in allowed for ch, allowed in zip(text, layout, strict=True))


def plate_format(text: str) -> PlateFormat | None:
    """Return the UK format an already-normalised text fits, or None.

    Parameters
    ----------
    text
        Upper-case A-Z/0-9 text, e.g. the ``text`` of a :class:`NormalisedPlate`. Any other character makes
        the result None.

    Returns
    -------
    PlateFormat or None
        The first of :data:`PLATE_FORMATS` that ``text`` fits.
    """
    if text in _CIVIC_ZERO_MARKS:
        return "dateless"
    for shape in _SHAPES.get(len(text), ()):
        if _fits(text, shape.layout) and shape.admits(text):
            return shape.format
    return None


def _corrected(text: str, layout: _Layout) -> tuple[str, int] | None:
    """``text`` changed to fit ``layout`` by letter/digit substitutions and how many, or None if it cannot."""
    out: list[str] = []
    changes = 0
    for ch, allowed in zip(text, layout, strict=True):
        if ch in allowed:
            out.append(ch)
            continue
        swapped = _CONFUSION.get(ch)
        if swapped is None or swapped not in allowed:
            return None
        out.append(swapped)
        changes += 1
    return "".join(out), changes


def _strip(raw: str) -> str:
    # Only ASCII counts: str.upper() maps some non-ASCII letters to ASCII ones (the dotless i, U+0131, to
    # "I"), and those are no plate characters.
    return "".join(ch for ch in raw if ch.isascii() and ch.isalnum()).upper()


def normalise_plate(raw: str, *, max_corrections: int = 2) -> NormalisedPlate:
    """Normalise an OCR plate text and correct letter/digit confusions where that is unambiguous.

    Parameters
    ----------
    raw
        Plate text as read, in any case, with any spaces, hyphens or punctuation.
    max_corrections
        Most substitutions one correction may make. A read that needs more is too damaged to rebuild with
        any confidence, and is left uncorrected.

    Returns
    -------
    NormalisedPlate
        ``text`` is upper-case A-Z/0-9, as long as the stripped input. See the module docstring for when
        it is corrected.

    Raises
    ------
    PlateTextError
        ``raw`` has no A-Z/0-9 character, or more than :data:`MAX_PLATE_LENGTH` after stripping.
    ValueError
        ``max_corrections`` is negative.
    """
    if max_corrections < 0:
        raise ValueError(f"max_corrections must be >= 0, got {max_corrections}")
    text = _strip(raw)
    if not text:
        raise PlateTextError(f"plate text {raw!r} has no A-Z or 0-9 characters")
    if len(text) > MAX_PLATE_LENGTH:
        raise PlateTextError(
            f"plate text {raw!r} has {len(text)} characters after stripping, more than {MAX_PLATE_LENGTH}"
        )
    fmt = plate_format(text)
    if fmt is not None:
        return NormalisedPlate(raw=raw, text=text, format=fmt, corrections=0)

    best_changes = max_corrections + 1
    best_texts: set[str] = set()
    for shape in _SHAPES.get(len(text), ()):
        result = _corrected(text, shape.layout)
        if result is None:
            continue
        candidate, changes = result
        if changes > max_corrections or not shape.admits(candidate):
            continue
        if changes < best_changes:
            best_changes, best_texts = changes, {candidate}
        elif changes == best_changes:
            best_texts.add(candidate)
    if len(best_texts) == 1:
        (candidate,) = best_texts
        return NormalisedPlate(
            raw=raw, text=candidate, format=plate_format(candidate), corrections=best_changes
        )
    return NormalisedPlate(raw=raw, text=text, format=None, corrections=0)

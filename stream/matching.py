"""Hotlist matching: exact, OCR-confusion and one-edit matches of a read plate, without scanning the hotlist.

Confusion classes
-----------------
OCR engines mistake characters that look alike in the plate font. Characters of one class below are treated
as one, by mapping each to its class representative (the digit) in :func:`canonical`:

=========  ===================================================================
class      why
=========  ===================================================================
O 0 D Q    round shapes; D and Q lose their corner or tail at low resolution
I 1 L      vertical strokes; L loses its foot
B 8        closed double bowls
S 5        the same curve, opened at top or bottom
Z 2        the same diagonal stroke
G 6        the same curl
=========  ===================================================================

No other classes are used. U/V, A/4, T/7, M/N and E/F are also misread, but less often, and adding a class
makes every plate in it match every other one at the confusion score. Such a misread is still found, as a
one-character ``edit`` match at a lower score. Because the classes are used as equivalence classes, D and O
(and Q and 0, and so on) are confusable with each other, not only with the digit.

Match kinds and scores
----------------------
``exact``, score 1.0
    The read plate equals the entry's plate.
``confusion``, score 0.9 - 0.05 x (confused positions - 1), at least 0.7
    The canonical forms are equal but the plates differ; "confused positions" counts the characters that
    differ (each within a class). One confusion scores 0.9, two 0.85, and five or more 0.7.
``edit``, score 0.6
    The canonical forms are one substitution, insertion or deletion apart (Levenshtein distance 1). Since a
    swap within a class is already a confusion, an ``edit`` is a genuine one-character difference; further
    confusions elsewhere in the plate do not change its score.

:meth:`HotlistIndex.match` does not look at read confidence. :func:`effective_priority` combines score and
confidence into the priority an alert is raised at.

Index
-----
:class:`HotlistIndex` keeps a deletion neighbourhood (the SymSpell idea): for every entry, the canonical key
and each distinct string made by deleting one character of it. Two strings are at most one edit apart only if
one of the query's variants (its key or one of its one-deletion strings) equals one of the entry's variants,
so a query looks up its own few variants and checks the entries they name with a real distance test on the
canonical forms. Nothing scans the hotlist.

The neighbourhood is not a dict of strings (about 800 MB for a million plates) but a hash table in three flat
arrays. A variant (at most 10 characters A-Z/0-9) is first numbered exactly: its number is ``"1" + variant``
read as a base-36 integer (``int(text, 36)``), below 36**11, so distinct variants have distinct numbers. The
number is then mixed into a 64-bit hash (an xor-shift and a multiplication by an odd constant, modulo 2**64,
which is a bijection). The rows are sorted by hash; the top ``k`` bits select a bucket (``k`` is chosen so
that there is about one row per bucket) and a directory array holds where each bucket's rows start. A row
keeps the low 32 bits of the hash as a fingerprint and the index of its entry. That is 8 bytes per row plus 4
per bucket: about 90 MB for a million UK plates (7.7 million rows, 8.4 million buckets).

Because the numbering and the mixing are plain integer arithmetic, they are computed in two ways that give
the same hashes: with Python integers for one plate (:meth:`HotlistIndex.match`, which reads the arrays
through ``memoryview`` s so that no NumPy call is made per read), and with NumPy for a whole poll batch of
plates at once (:meth:`HotlistIndex.match_batch`, which also looks the hashes up vectorised, so that only the
few reads that share a fingerprint with some entry are handled one by one). The hashes do not depend on the
process (unlike ``hash()`` of a string), although the index is still built by the process that uses it.
Fingerprint collisions only add candidates, which the distance test removes, so they can never cause a wrong
match; both paths run the same distance test on the same candidates' entries, so they return the same
matches. :meth:`HotlistIndex.could_match` stops after the vectorised look-up: a plate that shares no
fingerprint with any entry cannot match, and needs no further work (most reads of a stream).

The entries themselves are kept as columns (plates as fixed-width bytes, validity windows and priorities as
integers, repeated text fields as codes into their distinct values): about 50 bytes an entry instead of the
1.4 kB of a :class:`~cordon.events.HotlistEntry` object, and nothing per entry for the garbage collector to
walk. An entry is rebuilt only when it is matched, as the record a hit carries
(:class:`~cordon.events.HotlistEntryRecord`: its values were validated when it was listed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Final, NoReturn

import msgspec
import numpy as np
import numpy.typing as npt
from rapidfuzz.distance.Levenshtein import distance as _levenshtein

from cordon.events import HotlistEntry, HotlistEntryRecord, MatchKind
from stream.hotlist import HotlistVersion

__all__ = [
    "CONFUSION_CLASSES",
    "HotlistIndex",
    "HotlistPrefilter",
    "Match",
    "canonical",
    "confusion_score",
    "edit_window",
    "effective_priority",
    "search_keys",
]

CONFUSION_CLASSES: Final[tuple[str, ...]] = ("O0DQ", "I1L", "B8", "S5", "Z2", "G6")
"""Characters OCR confuses; each class's digit is its representative in :func:`canonical`."""

_CANONICAL: Final = str.maketrans(
    {ch: next(c for c in members if c.isdigit()) for members in CONFUSION_CLASSES for ch in members}
)

EXACT_SCORE: Final = 1.0
EDIT_SCORE: Final = 0.6
_BATCH = 65_536
_MAX_ENTRIES: Final = 100_000_000  # keeps row numbers (about 9 per entry) within int32
_LOW_32: Final = 0xFFFF_FFFF
_LOW_64: Final = 0xFFFF_FFFF_FFFF_FFFF
_WIDTH: Final = 10
"""Longest variant that has a number: the longest plate (``PlateRead.plate``, ``HotlistEntry.plate``)."""
_MIX: Final = 0x9E37_79B9_7F4A_7C15  # odd, so multiplying by it modulo 2**64 is a bijection
_NUMBERED: Final = re.compile(rf"[0-9A-Z]{{0,{_WIDTH}}}")
_POW36: Final = tuple(36**k for k in range(_WIDTH + 2))
_POW36_ARRAY: Final = np.array(_POW36, dtype=np.uint64)
_LEFT_WEIGHTS: Final = np.array([36 ** (_WIDTH - 1 - j) for j in range(_WIDTH)], dtype=np.uint64)
_INVALID: Final = 255
_DIGIT_OF: Final = np.full(128, _INVALID, dtype=np.uint8)
for _ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _DIGIT_OF[ord(_ch)] = int(_ch.translate(_CANONICAL), 36)  # a plate character's canonical base-36 digit
del _ch


def canonical(plate: str) -> str:
    """Map every character of a plate to its confusion-class representative (``"BO5"`` -> ``"805"``)."""
    return plate.translate(_CANONICAL)


def search_keys(plate: str) -> frozenset[str]:
    """The canonical form of a plate and its one-deletion strings (the SymSpell idea, as strings).

    Two plates whose canonical forms are at most one substitution, insertion or deletion apart always share
    a key (a substitution: both with that character deleted; an insertion or deletion: the longer one with
    it deleted is the shorter one). Plates sharing a key may be two edits apart, so a caller checks the
    distance of what it finds.
    """
    key = canonical(plate)
    return frozenset([key, *(key[:i] + key[i + 1 :] for i in range(len(key)))])


def confusion_score(confused_positions: int) -> float:
    """Score of a ``confusion`` match with this many differing (confusable) characters (>= 1)."""
    return round(max(0.7, 0.9 - 0.05 * (confused_positions - 1)), 2)


class Match:
    """One hotlist entry a read plate matches.

    The entry is built from the index's columns when first asked for: most matches of a busy stream are
    dropped by the matcher's policy, which needs only the listed ``plate`` and its ``hotlist``.

    Attributes
    ----------
    entry
        The matched entry.
    kind
        ``exact``, ``confusion`` or ``edit`` (see the module docstring).
    score
        0..1: 1.0 exact, 0.7-0.9 confusion, 0.6 edit.
    edits
        Levenshtein distance between the canonical forms: 0 for exact and confusion, 1 for edit.
    plate
        The entry's plate.
    hotlist
        The entry's hotlist.
    """

    __slots__ = ("_entry", "_position", "_table", "edits", "hotlist", "kind", "plate", "score")

    def __init__(
        self, table: _EntryTable, position: int, kind: MatchKind, score: float, edits: int, plate: str
    ) -> None:
        self._table, self._position = table, position
        self._entry: HotlistEntry | None = None
        self.kind, self.score, self.edits, self.plate = kind, score, edits, plate
        self.hotlist = table.text("hotlist", position)

    @property
    def entry(self) -> HotlistEntry:
        if self._entry is None:
            self._entry = self._table.entry(self._position)
        return self._entry

    @property
    def entry_record(self) -> HotlistEntryRecord:
        """The matched entry as a hit carries it (:class:`cordon.events.HotlistEntryRecord`)."""
        return self._table.entry_record(self._position)

    def _key(self) -> tuple[HotlistEntry, MatchKind, float, int]:
        return self.entry, self.kind, self.score, self.edits

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Match({self._table.entry_id(self._position)!r}, {self.kind!r}, {self.score}, {self.edits})"


def effective_priority(
    entry_priority: int,
    kind: MatchKind,
    score: float,
    read_confidence: float,
    *,
    low_confidence_threshold: float = 0.6,
) -> int:
    """The priority to raise an alert at: the entry's, one step less urgent for a weak fuzzy match.

    A non-exact match whose ``score x read_confidence`` is below ``low_confidence_threshold`` goes from
    priority p to p + 1 (4 stays 4). Exact matches keep the entry's priority whatever the read confidence: the
    plate text is right, whether or not the OCR was sure of it.

    Parameters
    ----------
    entry_priority
        1 (most urgent) to 4.
    kind, score
        From the :class:`Match`.
    read_confidence
        The read's overall confidence, 0..1.
    low_confidence_threshold
        0..1.

    Raises
    ------
    ValueError
        An argument is out of range.
    """
    if not 1 <= entry_priority <= 4:
        raise ValueError(f"entry_priority must be 1-4, got {entry_priority}")
    for name, value in (
        ("score", score),
        ("read_confidence", read_confidence),
        ("low_confidence_threshold", low_confidence_threshold),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within 0..1, got {value}")
    if kind != "exact" and score * read_confidence < low_confidence_threshold:
        return min(4, entry_priority + 1)
    return entry_priority


def _hash(variant: str) -> int:
    """64-bit hash of a canonical variant of at most :data:`_WIDTH` characters A-Z/0-9 (see the docstring)."""
    number = int("1" + variant, 36)
    return ((number ^ (number >> 31)) * _MIX) & _LOW_64


def _hash_array(numbers: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """:func:`_hash` of variant numbers (``int("1" + variant, 36)``), element-wise."""
    mixed = numbers ^ (numbers >> np.uint64(31))
    mixed *= np.uint64(_MIX)  # NumPy integer arrays wrap modulo 2**64, as the mask does in _hash
    return mixed


def _query_hashes(key: str, max_edits: int) -> list[int]:
    """Hashes of a canonical query key and (if ``max_edits``) its one-deletion strings that can be numbered.

    A variant with a character outside A-Z/0-9, or longer than :data:`_WIDTH`, cannot equal any entry's
    variant (entry plates are 1-10 characters A-Z/0-9), so it is left out.
    """
    # A comprehension is much faster here than de-duplicating runs as the build does.
    variants = [key[:i] + key[i + 1 :] for i in range(len(key))] if max_edits else []
    variants.append(key)
    if not _NUMBERED.fullmatch(key):
        variants = [variant for variant in variants if _NUMBERED.fullmatch(variant)]
    return [_hash(variant) for variant in variants]


def _plate_digits(
    plates: Sequence[str],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Canonical base-36 digits of plates, left-aligned in :data:`_WIDTH` columns (0 beyond the end).

    Returns
    -------
    digits, lengths, numbered
        ``(n, _WIDTH)`` digits, ``(n,)`` plate lengths, and whether each plate is at most :data:`_WIDTH`
        characters A-Z/0-9 (only those rows' digits are meaningful).
    """
    count = len(plates)
    lengths = np.fromiter(map(len, plates), dtype=np.intp, count=count)
    # Fixed-width UTF-32: longer plates are cut here, and flagged by their length.
    points = np.array(plates, dtype=f"<U{_WIDTH}").view(np.uint32).reshape(count, _WIDTH)
    codes = _DIGIT_OF[np.minimum(points, 127)]
    inside = np.arange(_WIDTH) < lengths[:, None]
    numbered = (lengths <= _WIDTH) & ~((codes == _INVALID) & inside).any(axis=1)
    digits = np.where(inside, codes, 0).astype(np.uint64)
    return digits, lengths, numbered


def _neighbourhood(
    digits: npt.NDArray[np.uint64], lengths: npt.NDArray[np.intp], fuzzy: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.intp]]:
    """Hashes of every plate's key and, for the ``fuzzy`` rows, its distinct one-deletion strings.

    ``digits`` and ``lengths`` are rows of :func:`_plate_digits` that are numbered. Returns the hashes and,
    for each, the row it belongs to.
    """
    rows = np.arange(len(lengths))
    # The key's digits read left-aligned as a base-36 number of _WIDTH digits; prefix sums of it give every
    # one-deletion string's number without building the strings.
    running = np.cumsum(digits * _LEFT_WEIGHTS, axis=1, dtype=np.uint64)
    whole = running[:, _WIDTH - 1]
    numbers = [_POW36_ARRAY[lengths] + whole // _POW36_ARRAY[_WIDTH - lengths]]
    owners = [rows]
    if fuzzy.any():
        short = np.maximum(lengths - 1, 0)
        lead, shift = _POW36_ARRAY[short], _POW36_ARRAY[_WIDTH - short]
        before = np.zeros(len(lengths), dtype=np.uint64)
        for i in range(_WIDTH):
            # Deleting any character of a run of equal ones gives the same string: keep the run's first.
            keep = fuzzy & (i < lengths)
            if i:
                keep &= digits[:, i] != digits[:, i - 1]
            # Digits before i stay in place; those after it move one place left (x 36).
            left = before + np.uint64(36) * (whole - running[:, i])
            numbers.append((lead + left // shift)[keep])
            owners.append(rows[keep])
            before = running[:, i]
    return _hash_array(np.concatenate(numbers)), np.concatenate(owners)


def _within_one_edit(a: str, b: str) -> bool:
    """Whether the Levenshtein distance between ``a`` and ``b`` is at most 1 (rapidfuzz, in C: 7x Python)."""
    return _levenshtein(a, b, score_cutoff=1) <= 1


def edit_window(read: str, listed: str) -> tuple[int, int]:
    """Characters of ``read`` that the one edit turning it into ``listed`` touches: ``(start, stop)``.

    A substitution or an extra character in the read touches that character; a character missing from the
    read touches its neighbours either side of the gap. Where repeated characters make the edit's place
    ambiguous (``AAB`` / ``AB``), every place that explains it counts. Compare canonical forms
    (:func:`canonical`) for matches made after confusion classes.

    Raises
    ------
    ValueError
        ``read`` and ``listed`` are not one substitution, insertion or deletion apart.
    """
    if not _within_one_edit(read, listed) or read == listed:
        raise ValueError(f"{read!r} and {listed!r} are not one edit apart")
    shorter, longer = sorted((read, listed), key=len)
    prefix = 0
    for x, y in zip(shorter, longer, strict=False):
        if x != y:
            break
        prefix += 1
    if len(read) == len(listed):
        return prefix, prefix + 1
    suffix = 0
    for x, y in zip(reversed(shorter), reversed(longer), strict=False):
        if x != y:
            break
        suffix += 1
    # The extra character of the longer string sits at any of these places, all of them explaining the edit.
    first, last = max(len(longer) - 1 - suffix, 0), min(prefix, len(longer) - 1)
    if len(read) > len(listed):
        return first, last + 1
    return max(first - 1, 0), min(last + 1, len(read))


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_NO_START: Final = -(2**63)  # before any datetime, in microseconds since the epoch
_NO_END: Final = 2**63 - 1
_SHARED_TEXT: Final = ("hotlist", "source", "category", "action", "information", "added_by")
"""Text fields stored once per distinct value (a list has a few names, sources, categories, actions)."""


def _micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact: datetimes have microsecond resolution)."""
    return (value - _EPOCH) // _MICROSECOND


class _EntryTable:
    """Hotlist entries as columns: about 50 bytes an entry, where a :class:`HotlistEntry` object takes 1.4 kB.

    Plates are fixed-width bytes, priorities and validity windows NumPy integers (microseconds since the
    epoch), and the other text fields codes into tuples of their distinct values; an ``entry_id`` is kept only
    where it is not the default ``<hotlist>:<plate>``. An entry is rebuilt (not validated again) when it is
    asked for, which the matcher does only for matches. Holding no objects per entry also keeps a million of
    them out of the garbage collector's walks. Single values are read through ``memoryview`` s (no NumPy call
    per read).
    """

    __slots__ = (
        "_arrays",
        "_codes",
        "_count",
        "_ends",
        "_ids",
        "_plates",
        "_priorities",
        "_starts",
        "_values",
    )

    def __init__(self, entries: Sequence[HotlistEntry]) -> None:
        count = self._count = len(entries)
        plates = list(map(attrgetter("plate"), entries))
        plate_array = np.array(plates, dtype=f"S{_WIDTH}")
        priority_array = np.fromiter(map(attrgetter("priority"), entries), dtype=np.uint8, count=count)
        start_array = np.fromiter(
            (
                _NO_START if value is None else _micros(value)
                for value in map(attrgetter("valid_from"), entries)
            ),
            dtype=np.int64,
            count=count,
        )
        end_array = np.fromiter(
            (
                _NO_END if value is None else _micros(value)
                for value in map(attrgetter("expires_at"), entries)
            ),
            dtype=np.int64,
            count=count,
        )
        code_arrays: list[npt.NDArray[np.uint32]] = []
        values: list[tuple[str, ...]] = []
        hotlists: list[str] = []
        for name in _SHARED_TEXT:
            column = list(map(attrgetter(name), entries))
            distinct = tuple(dict.fromkeys(column))
            number = {value: code for code, value in enumerate(distinct)}
            code_arrays.append(np.fromiter(map(number.__getitem__, column), dtype=np.uint32, count=count))
            values.append(distinct)
            if name == "hotlist":
                hotlists = column
        defaults = map(":".join, zip(hotlists, plates, strict=True))
        self._ids = {
            position: entry_id
            for position, (entry_id, default) in enumerate(
                zip(map(attrgetter("entry_id"), entries), defaults, strict=True)
            )
            if entry_id != default
        }
        self._arrays: tuple[npt.NDArray[np.generic], ...] = (
            priority_array,
            start_array,
            end_array,
            *code_arrays,
        )
        for array in self._arrays:
            array.flags.writeable = False
        self._plates = plate_array.tobytes()  # _WIDTH bytes a plate, padded with NUL
        self._priorities = priority_array.data
        self._starts = start_array.data
        self._ends = end_array.data
        self._codes = dict(zip(_SHARED_TEXT, (array.data for array in code_arrays), strict=True))
        self._values = dict(zip(_SHARED_TEXT, values, strict=True))

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Bytes of the column arrays (the distinct text values and non-default ids are not counted)."""
        return len(self._plates) + sum(int(array.nbytes) for array in self._arrays)

    def plate(self, position: int) -> str:
        start = position * _WIDTH
        return self._plates[start : start + _WIDTH].rstrip(b"\0").decode("ascii")

    def priority(self, position: int) -> int:
        value: int = self._priorities[position]
        return value

    def text(self, name: str, position: int) -> str:
        return self._values[name][self._codes[name][position]]

    def entry_id(self, position: int) -> str:
        found = self._ids.get(position)
        return found if found is not None else f"{self.text('hotlist', position)}:{self.plate(position)}"

    def active(self, position: int, at_us: int) -> bool:
        """Whether the entry matches reads captured at ``at_us`` (microseconds since the epoch)."""
        start: int = self._starts[position]
        end: int = self._ends[position]
        return start <= at_us < end

    def entry_record(self, position: int) -> HotlistEntryRecord:
        """The entry at ``position``, as it was given to the table, as a hit carries it.

        Every value is one the entry held when it was validated, and the times are rebuilt exactly (UTC,
        whole microseconds), so nothing is validated again.
        """
        start: int = self._starts[position]
        end: int = self._ends[position]
        text = self.text
        return HotlistEntryRecord(
            self.entry_id(position),
            self.plate(position),
            text("hotlist", position),
            text("source", position),
            text("category", position),
            self.priority(position),
            text("action", position),
            None if start == _NO_START else _EPOCH + start * _MICROSECOND,
            None if end == _NO_END else _EPOCH + end * _MICROSECOND,
            text("information", position),
            text("added_by", position),
        )

    def entry(self, position: int) -> HotlistEntry:
        """The entry at ``position``, as it was given to the table (:meth:`entry_record`, as the model)."""
        return HotlistEntry.model_construct(None, **msgspec.structs.asdict(self.entry_record(position)))


class HotlistIndex:
    """An immutable index of one hotlist version's entries; build it once per version and swap it whole.

    Use :meth:`build` (or :meth:`from_version`); see the module docstring for how it works.
    """

    __slots__ = ("_directory", "_entries", "_fingerprints", "_shift", "_targets", "_version", "_views")

    _entries: _EntryTable
    _directory: npt.NDArray[np.int32]
    _fingerprints: npt.NDArray[np.uint32]
    _targets: npt.NDArray[np.int32]
    _views: tuple[memoryview, memoryview, memoryview]
    _shift: int
    _version: int

    def __init__(self) -> None:
        raise TypeError("use HotlistIndex.build() or HotlistIndex.from_version()")

    @classmethod
    def build(cls, entries: Iterable[HotlistEntry], *, version: int) -> HotlistIndex:
        """Index entries.

        Parameters
        ----------
        entries
            Entries with unique ``entry_id`` s, active or not (activity is checked per read).
        version
            The hotlist version they make up; 0 for the empty index used before any version arrives.

        Raises
        ------
        ValueError
            ``version`` is negative, or an ``entry_id`` repeats.
        """
        if version < 0:
            raise ValueError(f"version must be >= 0, got {version}")
        items = tuple(entries)
        if len(items) > _MAX_ENTRIES:
            raise ValueError(f"at most {_MAX_ENTRIES} entries can be indexed, got {len(items)}")
        if len({entry.entry_id for entry in items}) != len(items):
            raise ValueError("entry ids must be unique within a hotlist index")
        hash_parts: list[npt.NDArray[np.uint64]] = [np.empty(0, dtype=np.uint64)]
        target_parts: list[npt.NDArray[np.int32]] = [np.empty(0, dtype=np.int32)]
        for start in range(0, len(items), _BATCH):
            plates = [entry.plate for entry in items[start : start + _BATCH]]
            digits, lengths, numbered = _plate_digits(plates)
            if not numbered.all():
                bad = plates[int(np.argmin(numbered))]
                raise ValueError(f"entry plate {bad!r} is not 1 to {_WIDTH} characters A-Z/0-9")
            hashes, owners = _neighbourhood(digits, lengths, np.ones(len(plates), dtype=np.bool_))
            hash_parts.append(hashes)
            target_parts.append((owners + start).astype(np.int32))
        all_hashes = np.concatenate(hash_parts)
        all_targets = np.concatenate(target_parts)
        del hash_parts, target_parts
        order = np.argsort(all_hashes)
        all_hashes = all_hashes[order]
        targets_sorted = all_targets[order]
        del all_targets, order
        bits = max(1, len(all_hashes).bit_length())  # about one row per bucket
        shift = 64 - bits
        per_bucket = np.bincount((all_hashes >> np.uint64(shift)).astype(np.intp), minlength=1 << bits)
        directory = np.zeros(len(per_bucket) + 1, dtype=np.int32)
        np.cumsum(per_bucket, out=directory[1:])
        fingerprints = (all_hashes & np.uint64(_LOW_32)).astype(np.uint32)
        del all_hashes, per_bucket
        for array in (directory, fingerprints, targets_sorted):
            array.flags.writeable = False
        index = object.__new__(cls)
        object.__setattr__(index, "_entries", _EntryTable(items))
        object.__setattr__(index, "_directory", directory)
        object.__setattr__(index, "_fingerprints", fingerprints)
        object.__setattr__(index, "_targets", targets_sorted)
        views = (directory.data, fingerprints.data, targets_sorted.data)
        object.__setattr__(index, "_views", views)
        object.__setattr__(index, "_shift", shift)
        object.__setattr__(index, "_version", version)
        return index

    @classmethod
    def from_version(cls, version: HotlistVersion) -> HotlistIndex:
        """Index every entry of a :class:`stream.hotlist.HotlistVersion`."""
        return cls.build(version.entries, version=version.version)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"HotlistIndex is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"HotlistIndex is immutable; cannot delete {name!r}")

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"HotlistIndex(version={self._version}, entries={len(self._entries)})"

    @property
    def version(self) -> int:
        """The hotlist version indexed (0: the empty index before any version)."""
        return self._version

    @property
    def size(self) -> int:
        """Number of entries indexed (as ``len()``; for gauges)."""
        return len(self._entries)

    @property
    def entries(self) -> tuple[HotlistEntry, ...]:
        """The entries indexed, in the order given to :meth:`build` (rebuilt from columns: slow for many)."""
        return tuple(self._entries.entry(position) for position in range(len(self._entries)))

    @property
    def neighbourhood_size(self) -> int:
        """Number of (variant, entry) rows of the deletion neighbourhood."""
        return len(self._targets)

    @property
    def nbytes(self) -> int:
        """Bytes of the index arrays (the entries themselves are not counted: see :attr:`entries_nbytes`)."""
        return int(self._directory.nbytes + self._fingerprints.nbytes + self._targets.nbytes)

    @property
    def entries_nbytes(self) -> int:
        """Bytes of the entries' columns (about 50 per entry; their distinct text values not counted)."""
        return self._entries.nbytes

    def _candidates(self, hashes: list[int]) -> set[int]:
        """Indices of entries that share a fingerprint with any of ``hashes`` (a superset of matches)."""
        directory, fingerprints, targets = self._views
        shift, low_32 = self._shift, _LOW_32
        found: set[int] = set()
        for full in hashes:
            bucket = full >> shift
            row, stop = directory[bucket], directory[bucket + 1]
            if row != stop:
                fingerprint = full & low_32
                while row < stop:
                    if fingerprints[row] == fingerprint:
                        found.add(targets[row])
                    row += 1
        return found

    def _verify(
        self, plate: str, key: str, candidates: Iterable[int], at: datetime, max_edits: int
    ) -> list[Match]:
        """The candidates that really match ``plate`` (canonical form ``key``) at ``at``, best first."""
        table = self._entries
        at_us: int | None = None
        found: list[tuple[float, int, str, MatchKind, float, int, int, str]] = []
        for position in candidates:
            entry_plate = table.plate(position)
            entry_key = entry_plate.translate(_CANONICAL)
            kind: MatchKind
            if entry_key == key:
                if entry_plate == plate:
                    kind, score, edits = "exact", EXACT_SCORE, 0
                else:
                    confused = sum(1 for x, y in zip(plate, entry_plate, strict=True) if x != y)
                    kind, score, edits = "confusion", confusion_score(confused), 0
            elif max_edits and _within_one_edit(key, entry_key):
                kind, score, edits = "edit", EDIT_SCORE, 1
            else:
                continue
            if at_us is None:
                at_us = _micros(at)
            if table.active(position, at_us):
                # Best first: score descending, then priority (1 first), then entry id (unique).
                key_of = (-score, table.priority(position), table.entry_id(position))
                found.append((*key_of, kind, score, edits, position, entry_plate))
        found.sort()
        return [
            Match(table, position, kind, score, edits, entry_plate)
            for *_, kind, score, edits, position, entry_plate in found
        ]

    def match(self, plate: str, *, at: datetime, max_edits: int = 1) -> list[Match]:
        """Entries a read plate matches.

        Parameters
        ----------
        plate
            The normalised read plate (upper-case A-Z/0-9, as :attr:`cordon.events.PlateRead.plate`).
        at
            When the plate was read (aware); only entries active then match (``valid_from <= at <
            expires_at``).
        max_edits
            1 for ``exact``, ``confusion`` and ``edit`` matches; 0 for ``exact`` and ``confusion`` only.

        Returns
        -------
        list of Match
            One per matched entry, best first: score descending, then priority (1 first), then entry id.

        Raises
        ------
        ValueError
            ``max_edits`` is not 0 or 1, or ``at`` is naive.
        """
        if max_edits not in (0, 1):
            raise ValueError(f"max_edits must be 0 or 1, got {max_edits}")
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        if not self._entries:
            return []
        key = plate.translate(_CANONICAL)
        candidates = self._candidates(_query_hashes(key, max_edits))
        if not candidates:
            return []
        return self._verify(plate, key, candidates, at, max_edits)

    def match_batch(
        self,
        plates: Sequence[str],
        *,
        at: datetime | Sequence[datetime],
        max_edits: int | Sequence[int] = 1,
    ) -> list[list[Match]]:
        """Entries each of a batch of read plates matches; the same as :meth:`match` per plate, but faster.

        The canonical keys, one-deletion strings, hashes and lookups of the whole batch are computed with
        NumPy; only plates that share a fingerprint with some entry (a few per cent) are then checked one by
        one, with the same distance test as :meth:`match`. Plates that are not 1-10 characters A-Z/0-9 (never
        a :class:`cordon.events.PlateRead`'s) go through :meth:`match`.

        Parameters
        ----------
        plates
            The normalised read plates.
        at
            When each plate was read (aware), one per plate, or one time for all of them.
        max_edits
            As for :meth:`match`: one value per plate, or one for all of them.

        Returns
        -------
        list of list of Match
            ``[index.match(plate, at=..., max_edits=...) for each plate]``, in the order of ``plates``.

        Raises
        ------
        ValueError
            A ``max_edits`` is not 0 or 1, an ``at`` is naive, or ``at`` / ``max_edits`` is a sequence of
            another length than ``plates``.
        """
        count = len(plates)
        times = [at] * count if isinstance(at, datetime) else list(at)
        edits = [max_edits] * count if isinstance(max_edits, int) else list(max_edits)
        if len(times) != count or len(edits) != count:
            raise ValueError(
                f"need one at and one max_edits per plate ({count}), got {len(times)}, {len(edits)}"
            )
        if any(value not in (0, 1) for value in set(edits)):
            raise ValueError(f"max_edits must be 0 or 1, got {sorted(set(edits))}")
        if any(when.tzinfo is None for when in times):
            raise ValueError("at must be timezone-aware")
        results: list[list[Match]] = [[] for _ in range(count)]
        if not self._entries or not count:
            return results
        digits, lengths, numbered = _plate_digits(plates)
        fuzzy = np.fromiter(edits, dtype=np.bool_, count=count)
        if not numbered.all():
            for row in np.flatnonzero(~numbered).tolist():
                results[row] = self.match(plates[row], at=times[row], max_edits=edits[row])
            rows = np.flatnonzero(numbered)
            digits, lengths, fuzzy = digits[rows], lengths[rows], fuzzy[rows]
        else:
            rows = np.arange(count)
        hashes, owners = _neighbourhood(digits, lengths, fuzzy)
        owners, targets = self._lookup(hashes, rows[owners])
        if not len(owners):
            return results
        # Each (plate, entry) pair once, sorted by plate: each plate's candidates are one run.
        size = len(self._entries)
        pairs = np.unique(owners.astype(np.int64) * size + targets)
        pair_rows = pairs // size
        bounds = (np.flatnonzero(np.diff(pair_rows)) + 1).tolist()
        candidates = (pairs % size).tolist()
        for first, stop, row in zip(
            [0, *bounds], [*bounds, len(pairs)], pair_rows[[0, *bounds]].tolist(), strict=True
        ):
            plate = plates[row]
            results[row] = self._verify(
                plate, plate.translate(_CANONICAL), candidates[first:stop], times[row], edits[row]
            )
        return results

    def could_match(self, plates: Sequence[str], *, max_edits: int | Sequence[int] = 1) -> list[bool]:
        """Whether each plate shares a hash fingerprint with some entry's key or one-deletion strings.

        False guarantees that :meth:`match` returns no match for the plate (whatever the time), so the plate
        needs no further look; True means it may match (candidates still need the distance test). Plates that
        are not 1-10 characters A-Z/0-9 are always True. Vectorised like :meth:`match_batch`. The same as
        :meth:`HotlistPrefilter.could_match` of :meth:`prefilter`.

        Raises
        ------
        ValueError
            A ``max_edits`` is not 0 or 1, or ``max_edits`` is a sequence of another length than ``plates``.
        """
        return self.prefilter().could_match(plates, max_edits=max_edits)

    def prefilter(self) -> HotlistPrefilter:
        """What :meth:`could_match` needs of the index (its arrays, not copied): for another process."""
        return HotlistPrefilter(
            version=self._version,
            entries=len(self._entries),
            shift=self._shift,
            directory=self._directory,
            fingerprints=self._fingerprints,
        )

    def _lookup(
        self, hashes: npt.NDArray[np.uint64], owners: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int32]]:
        """Every (owner, entry) whose row shares bucket and fingerprint with a hash, vectorised."""
        query, table_rows = _same_fingerprint(self._shift, self._directory, self._fingerprints, hashes)
        return owners[query], self._targets[table_rows]


def _same_fingerprint(
    shift: int,
    directory: npt.NDArray[np.int32],
    fingerprints: npt.NDArray[np.uint32],
    hashes: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Every (hash, table row) pair of the same bucket and fingerprint: their positions, vectorised."""
    buckets = (hashes >> np.uint64(shift)).astype(np.intp)
    starts = directory[buckets].astype(np.intp)
    counts = directory[buckets + 1] - starts
    total = int(counts.sum())
    if not total:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    # Row numbers of every bucket's rows, one bucket after the other, without a Python loop.
    ends = np.cumsum(counts)
    table_rows = np.arange(total) + np.repeat(starts - (ends - counts), counts)
    query = np.repeat(np.arange(len(hashes)), counts)
    same = fingerprints[table_rows] == (hashes[query] & np.uint64(_LOW_32)).astype(np.uint32)
    return query[same], table_rows[same]


@dataclass(frozen=True, slots=True, eq=False)
class HotlistPrefilter:
    """Which plates cannot match an index's entries: its hash directory and fingerprints, without the entries.

    :meth:`HotlistIndex.prefilter` makes it (about 8 bytes a neighbourhood row: 62 MB for a million UK
    plates). The matcher's fetcher process keeps one, to send on only the reads that may match. Two
    prefilters are equal only if they are the same object (the arrays are not compared).

    Attributes
    ----------
    version
        The hotlist version of the index.
    entries
        Entries of the index (0: nothing can match).
    """

    version: int
    entries: int
    shift: int
    directory: npt.NDArray[np.int32]
    fingerprints: npt.NDArray[np.uint32]

    def could_match(self, plates: Sequence[str], *, max_edits: int | Sequence[int] = 1) -> list[bool]:
        """:meth:`HotlistIndex.could_match` of the index this was made from."""
        count = len(plates)
        edits = [max_edits] * count if isinstance(max_edits, int) else list(max_edits)
        if len(edits) != count:
            raise ValueError(f"need one max_edits per plate ({count}), got {len(edits)}")
        if any(value not in (0, 1) for value in set(edits)):
            raise ValueError(f"max_edits must be 0 or 1, got {sorted(set(edits))}")
        if not self.entries or not count:
            return [False] * count
        digits, lengths, numbered = _plate_digits(plates)
        rows = np.flatnonzero(numbered)
        fuzzy = np.fromiter(edits, dtype=np.bool_, count=count)[rows]
        hashes, owners = _neighbourhood(digits[rows], lengths[rows], fuzzy)
        query, _ = _same_fingerprint(self.shift, self.directory, self.fingerprints, hashes)
        possible = ~numbered
        possible[rows[owners[query]]] = True
        return possible.tolist()  # type: ignore[no-any-return]

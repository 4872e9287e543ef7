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
arrays. Each variant is hashed with ``hash()`` (64 bits); the rows are sorted by hash; the top ``k`` bits
select a bucket (``k`` is chosen so that there is about one row per bucket) and a directory array holds where
each bucket's rows start. A row keeps the low 32 bits of the hash as a fingerprint and the index of its
entry. That is 8 bytes per row plus 4 per bucket: about 90 MB for a million UK plates (7.7 million rows,
8.4 million buckets). A lookup reads one directory slot and about one row, through ``memoryview`` s so that
no NumPy call is made per read.
Fingerprint and hash collisions only add candidates, which the distance test removes, so they can never cause
a wrong match. ``hash()`` of a string differs between processes (``PYTHONHASHSEED``), which is why an index is
built in the process that uses it and never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NoReturn

import numpy as np
import numpy.typing as npt

from cordon.events import HotlistEntry, MatchKind
from stream.hotlist import HotlistVersion

__all__ = [
    "CONFUSION_CLASSES",
    "HotlistIndex",
    "Match",
    "canonical",
    "confusion_score",
    "effective_priority",
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


def canonical(plate: str) -> str:
    """Map every character of a plate to its confusion-class representative (``"BO5"`` -> ``"805"``)."""
    return plate.translate(_CANONICAL)


def confusion_score(confused_positions: int) -> float:
    """Score of a ``confusion`` match with this many differing (confusable) characters (>= 1)."""
    return round(max(0.7, 0.9 - 0.05 * (confused_positions - 1)), 2)


@dataclass(frozen=True, slots=True)
class Match:
    """One hotlist entry a read plate matches.

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
    """

    entry: HotlistEntry
    kind: MatchKind
    score: float
    edits: int


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


def _variants(key: str) -> Iterator[str]:
    """``key`` and its distinct one-deletion strings (deleting any character of a run gives the same one)."""
    yield key
    previous = ""
    for i, ch in enumerate(key):
        if ch != previous:
            yield key[:i] + key[i + 1 :]
        previous = ch


def _within_one_edit(a: str, b: str) -> bool:
    """Whether the Levenshtein distance between ``a`` and ``b`` is at most 1."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1:
        return False
    i = 0
    for x, y in zip(a, b, strict=False):  # b may be one longer
        if x != y:
            break
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


def _sort_key(match: Match) -> tuple[float, int, str]:
    return (-match.score, match.entry.priority, match.entry.entry_id)


class HotlistIndex:
    """An immutable index of one hotlist version's entries; build it once per version and swap it whole.

    Use :meth:`build` (or :meth:`from_version`); see the module docstring for how it works.
    """

    __slots__ = ("_directory", "_entries", "_fingerprints", "_shift", "_targets", "_version", "_views")

    _entries: tuple[HotlistEntry, ...]
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
            batch = items[start : start + _BATCH]
            hashes: list[int] = []
            counts: list[int] = []
            for entry in batch:
                before = len(hashes)
                hashes.extend(map(hash, _variants(entry.plate.translate(_CANONICAL))))
                counts.append(len(hashes) - before)
            hash_parts.append(np.array(hashes, dtype=np.int64).view(np.uint64))
            positions = np.arange(start, start + len(batch), dtype=np.int32)
            target_parts.append(np.repeat(positions, counts))
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
        object.__setattr__(index, "_entries", items)
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
        """The entries indexed, in the order given to :meth:`build`."""
        return self._entries

    @property
    def neighbourhood_size(self) -> int:
        """Number of (variant, entry) rows of the deletion neighbourhood."""
        return len(self._targets)

    @property
    def nbytes(self) -> int:
        """Bytes of the index arrays (the entries themselves are not counted)."""
        return int(self._directory.nbytes + self._fingerprints.nbytes + self._targets.nbytes)

    def _candidates(self, variants: list[str]) -> set[int]:
        """Indices of entries that share a variant hash with any of ``variants`` (a superset of matches)."""
        directory, fingerprints, targets = self._views
        shift, low_32, low_64 = self._shift, _LOW_32, _LOW_64
        found: set[int] = set()
        for variant in variants:
            full = hash(variant) & low_64
            bucket = full >> shift
            row, stop = directory[bucket], directory[bucket + 1]
            if row != stop:
                fingerprint = full & low_32
                while row < stop:
                    if fingerprints[row] == fingerprint:
                        found.add(targets[row])
                    row += 1
        return found

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
        # A comprehension is much faster here than the de-duplicating generator used when building.
        variants = [key[:i] + key[i + 1 :] for i in range(len(key))] if max_edits else []
        variants.append(key)
        candidates = self._candidates(variants)
        if not candidates:
            return []
        matches: list[Match] = []
        for position in candidates:
            entry = self._entries[position]
            entry_key = entry.plate.translate(_CANONICAL)
            if entry_key == key:
                if entry.plate == plate:
                    match = Match(entry, "exact", EXACT_SCORE, 0)
                else:
                    confused = sum(1 for x, y in zip(plate, entry.plate, strict=True) if x != y)
                    match = Match(entry, "confusion", confusion_score(confused), 0)
            elif max_edits and _within_one_edit(key, entry_key):
                match = Match(entry, "edit", EDIT_SCORE, 1)
            else:
                continue
            if entry.active_at(at):
                matches.append(match)
        matches.sort(key=_sort_key)
        return matches

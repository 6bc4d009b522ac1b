"""Vocabularies: characters for CTC spelling, classes (glosses) for isolated signs.

Both map tokens to contiguous ids and back, and both are complete both ways: every id has its
token, so decoding can never fall back to a default. The CTC blank is an id of its own, at one
fixed index, never shared with a character or with label padding (labels are padded with
:data:`LABEL_PAD` and carry a mask).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

#: Value of padded label positions; padded positions also have label_mask == 0.
LABEL_PAD = -1

#: The 59 characters of Kaggle asl-fingerspelling, in the order of its
#: ``character_to_prediction_index.json`` (space is 0, ``~`` is 58).
KAGGLE_CHARACTERS = " !#$%&'()*+,-./0123456789:;=?@[_abcdefghijklmnopqrstuvwxyz~"


class UnknownTokenError(ValueError):
    """A label holds a character or class outside the vocabulary."""


def _check_index_map(mapping: Mapping[str, int], what: str) -> list[str]:
    """Returns the tokens ordered by id, after checking the ids are exactly 0 … n-1."""
    ids = sorted(mapping.values())
    if ids != list(range(len(ids))):
        raise ValueError(f"{what}: ids must be 0 … {len(ids) - 1} with none missing or repeated")
    tokens = [""] * len(ids)
    for token, i in mapping.items():
        tokens[i] = token
    return tokens


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """Characters for CTC, with the blank at ``blank_id``.

    ``blank_id`` defaults to ``len(characters)`` so character ids equal the Kaggle JSON's and a
    CTC head has ``len(characters) + 1`` outputs (60 for Kaggle). ``replacements`` maps
    characters outside the vocabulary to ones inside (``{'A': 'a'}``) or to ``''`` (drop it);
    it is the only way an unknown character is accepted.
    """

    characters: tuple[str, ...]
    blank_id: int = -1
    replacements: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if len(set(self.characters)) != len(self.characters):
            raise ValueError("characters must be distinct")
        if any(len(c) != 1 for c in self.characters):
            raise ValueError("each character must be a single code point")
        if self.blank_id == -1:
            object.__setattr__(self, "blank_id", len(self.characters))
        if not 0 <= self.blank_id <= len(self.characters):
            raise ValueError(f"blank_id must be in [0, {len(self.characters)}]")
        for source, target in self.replacements.items():
            if source in self.characters:
                raise ValueError(f"replacement {source!r} is already a vocabulary character")
            if any(c not in self.characters for c in target):
                raise ValueError(f"replacement {source!r} -> {target!r} leaves the vocabulary")

    @classmethod
    def from_index_map(cls, mapping: Mapping[str, int], **kwargs) -> CharVocab:
        """From a ``character_to_prediction_index.json`` mapping."""
        return cls(tuple(_check_index_map(mapping, "character map")), **kwargs)

    @classmethod
    def kaggle(cls, **kwargs) -> CharVocab:
        return cls(tuple(KAGGLE_CHARACTERS), **kwargs)

    @property
    def size(self) -> int:
        """Number of CTC outputs: the characters plus the blank."""
        return len(self.characters) + 1

    def _char_id(self, c: str) -> int:
        i = self.characters.index(c)
        return i + (i >= self.blank_id)

    def encode(self, text: str) -> list[int]:
        """Characters to ids; raises :class:`UnknownTokenError` naming the first unknown one."""
        ids = []
        for position, c in enumerate(text):
            if c in self.characters:
                ids.append(self._char_id(c))
            elif c in self.replacements:
                ids.extend(self._char_id(r) for r in self.replacements[c])
            else:
                raise UnknownTokenError(
                    f"character {c!r} at position {position} of {text!r} is not in the "
                    "vocabulary; map it with a replacement (e.g. --replace 'A=a') or fix the label"
                )
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text. Blanks and :data:`LABEL_PAD` are skipped; any other id must be valid."""
        out = []
        for i in ids:
            i = int(i)
            if i in (self.blank_id, LABEL_PAD):
                continue
            if not 0 <= i < self.size:
                raise ValueError(f"id {i} is outside the vocabulary of size {self.size}")
            out.append(self.characters[i - (i > self.blank_id)])
        return "".join(out)

    def to_json(self) -> dict:
        return {
            "kind": "characters",
            "characters": "".join(self.characters),
            "blank_id": self.blank_id,
            "replacements": dict(self.replacements),
        }


@dataclasses.dataclass(frozen=True)
class ClassVocab:
    """Class names (signs, glosses) with ids 0 … n-1."""

    classes: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be distinct")

    @classmethod
    def from_index_map(cls, mapping: Mapping[str, int]) -> ClassVocab:
        """From a ``sign_to_prediction_index_map.json`` mapping."""
        return cls(tuple(_check_index_map(mapping, "class map")))

    @property
    def size(self) -> int:
        return len(self.classes)

    def encode(self, name: str) -> list[int]:
        """A class name to a one-element id list (labels are sequences for every task)."""
        try:
            return [self.classes.index(name)]
        except ValueError:
            raise UnknownTokenError(
                f"class {name!r} is not in the vocabulary of {self.size} classes"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to class names joined by spaces; :data:`LABEL_PAD` is skipped."""
        names = []
        for i in ids:
            i = int(i)
            if i == LABEL_PAD:
                continue
            if not 0 <= i < self.size:
                raise ValueError(f"class id {i} is outside the vocabulary of size {self.size}")
            names.append(self.classes[i])
        return " ".join(names)

    def to_json(self) -> dict:
        return {"kind": "classes", "classes": list(self.classes)}


Vocab = CharVocab | ClassVocab


def from_json(data: Mapping) -> Vocab:
    """Inverse of ``to_json`` for both kinds."""
    if data.get("kind") == "characters":
        return CharVocab(
            tuple(data["characters"]),
            blank_id=data["blank_id"],
            replacements=data.get("replacements", {}),
        )
    if data.get("kind") == "classes":
        return ClassVocab(tuple(data["classes"]))
    raise ValueError(f"unknown vocabulary kind {data.get('kind')!r}")


def load_index_map(path: str | os.PathLike) -> dict[str, int]:
    from aslx import files

    return json.loads(files.path(path).read_text())

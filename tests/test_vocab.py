"""Character and class vocabularies: ids, the CTC blank, replacements and JSON round trips."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslx.vocab import (
    KAGGLE_CHARACTERS,
    LABEL_PAD,
    CharVocab,
    ClassVocab,
    UnknownTokenError,
    from_json,
    load_index_map,
)

KAGGLE_TEXT = st.text(alphabet=KAGGLE_CHARACTERS, max_size=40)


def _expected_ids(text: str, characters: str, blank_id: int) -> list[int]:
    """Ids by hand: the character's position, moved up by one at or after the blank."""
    ids = []
    for c in text:
        position = characters.index(c)
        ids.append(position if position < blank_id else position + 1)
    return ids


# --- the Kaggle character vocabulary -----------------------------------------------------


def test_kaggle_vocabulary_has_59_characters_and_the_blank_at_59():
    """Kaggle: 59 distinct characters (space is 0, '~' is 58), blank 59, 60 CTC outputs."""
    vocab = CharVocab.kaggle()
    assert len(KAGGLE_CHARACTERS) == 59
    assert len(set(KAGGLE_CHARACTERS)) == 59
    assert len(vocab.characters) == 59
    assert vocab.blank_id == 59
    assert vocab.size == 60
    assert vocab.encode(" ") == [0]
    assert vocab.encode("~") == [58]
    assert vocab.encode("a") == [KAGGLE_CHARACTERS.index("a")]
    assert LABEL_PAD == -1


def test_from_index_map_orders_a_shuffled_mapping_by_id():
    """from_index_map of a shuffled character_to_prediction_index dict equals id order."""
    items = [(c, i) for i, c in enumerate(KAGGLE_CHARACTERS)]
    random.Random(0).shuffle(items)
    vocab = CharVocab.from_index_map(dict(items))
    assert vocab.characters == tuple(KAGGLE_CHARACTERS)
    assert vocab == CharVocab.kaggle()


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(enumerate("xq z"))))
def test_from_index_map_is_independent_of_dict_order(items):
    """Any insertion order of the same mapping gives the characters ordered by id."""
    vocab = CharVocab.from_index_map({c: i for i, c in items})
    assert vocab.characters == ("x", "q", " ", "z")
    assert ClassVocab.from_index_map({c: i for i, c in items}).classes == ("x", "q", " ", "z")


@pytest.mark.parametrize(
    "mapping",
    [
        {"a": 0, "b": 2},  # gap
        {"a": 0, "b": 0},  # repeated id
        {"a": 1, "b": 2},  # does not start at 0
        {"a": 0, "b": -1},
    ],
)
def test_from_index_map_rejects_gaps_and_duplicate_ids(mapping):
    """Ids that are not exactly 0 … n-1 are refused for characters and for classes."""
    with pytest.raises(ValueError, match="ids must be"):
        CharVocab.from_index_map(mapping)
    with pytest.raises(ValueError, match="ids must be"):
        ClassVocab.from_index_map(mapping)


def test_load_index_map_reads_a_character_json(tmp_path):
    """A character_to_prediction_index.json file loads into the Kaggle vocabulary."""
    path = tmp_path / "character_to_prediction_index.json"
    path.write_text(json.dumps({c: i for i, c in enumerate(KAGGLE_CHARACTERS)}))
    assert CharVocab.from_index_map(load_index_map(path)) == CharVocab.kaggle()


# --- encode / decode ---------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(KAGGLE_TEXT)
def test_kaggle_encode_matches_positions_and_decode_round_trips(text):
    """encode gives each character's Kaggle index and decode(encode(text)) == text."""
    vocab = CharVocab.kaggle()
    ids = vocab.encode(text)
    assert ids == [KAGGLE_CHARACTERS.index(c) for c in text]
    assert vocab.blank_id not in ids
    assert vocab.decode(ids) == text


@pytest.mark.parametrize("text", ["hello", "aa", "a  b", "", "~~~", "   "])
def test_repeated_characters_survive_the_round_trip(text):
    """Repeats are not collapsed: decode(encode(text)) keeps every character."""
    vocab = CharVocab.kaggle()
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text


def test_decode_skips_blank_and_label_padding():
    """Blank ids and LABEL_PAD (-1) are dropped from the decoded text."""
    vocab = CharVocab.kaggle()
    h, i = vocab.encode("hi")
    assert vocab.decode([59, h, 59, -1, i, LABEL_PAD, LABEL_PAD]) == "hi"
    assert vocab.decode([59, 59, -1]) == ""
    assert vocab.decode([]) == ""


@pytest.mark.parametrize("bad_id", [60, 61, 1000, -2, -60])
def test_decode_rejects_out_of_range_ids(bad_id):
    """Any id outside 0 … size-1 (other than LABEL_PAD) raises ValueError naming it."""
    with pytest.raises(ValueError, match=f"id {bad_id} "):
        CharVocab.kaggle().decode([0, bad_id])


def test_unknown_character_raises_naming_character_and_position():
    """An unknown character raises UnknownTokenError with the character and its position."""
    vocab = CharVocab.kaggle()
    with pytest.raises(UnknownTokenError) as excinfo:
        vocab.encode("abC d")
    message = str(excinfo.value)
    assert "'C'" in message
    assert "position 2" in message
    assert isinstance(excinfo.value, ValueError)
    with pytest.raises(UnknownTokenError, match="position 0"):
        vocab.encode("Zoo")


# --- replacements ------------------------------------------------------------------------


def test_replacements_map_characters_into_the_vocabulary_or_drop_them():
    """'A' -> 'a' encodes as 'a'; a character replaced by '' disappears; others still raise."""
    vocab = CharVocab(tuple("ab "), replacements={"A": "a", "%": "", "W": "ab"})
    assert vocab.encode("Ab%a") == vocab.encode("aba")
    assert vocab.decode(vocab.encode("A%b")) == "ab"
    assert vocab.encode("W") == [0, 1]
    assert vocab.encode("%%%") == []
    with pytest.raises(UnknownTokenError, match="'c'"):
        vocab.encode("abc")


def test_kaggle_replacements_lowercase_and_drop():
    """With Kaggle characters, 'H' -> 'h' and '"' -> '' give the lowercase text without quotes."""
    vocab = CharVocab.kaggle(replacements={"H": "h", '"': ""})
    assert vocab.decode(vocab.encode('"Hello"')) == "hello"
    assert vocab.encode("Hi") == vocab.encode("hi")


@pytest.mark.parametrize("replacements", [{"A": "Z"}, {"Æ": "aE"}, {"ß": "ss\u00e9"}])
def test_replacement_leaving_the_vocabulary_is_rejected_at_construction(replacements):
    """A replacement whose target holds a character outside the vocabulary is refused."""
    with pytest.raises(ValueError, match="leaves the vocabulary"):
        CharVocab.kaggle(replacements=replacements)


# --- the blank id ------------------------------------------------------------------------


def test_blank_id_zero_shifts_every_character_up_by_one():
    """With blank 0, character k gets id k + 1, no character has id 0, round trip holds."""
    vocab = CharVocab.kaggle(blank_id=0)
    assert vocab.blank_id == 0
    assert vocab.size == 60
    assert vocab.encode(" ") == [1]
    assert vocab.encode("~") == [59]
    text = "hello world"
    ids = vocab.encode(text)
    assert 0 not in ids
    assert ids == [KAGGLE_CHARACTERS.index(c) + 1 for c in text]
    assert vocab.decode([0, *ids, 0, -1]) == text


@settings(max_examples=60, deadline=None)
@given(blank_id=st.integers(0, 59), text=KAGGLE_TEXT)
def test_any_blank_id_gives_distinct_ids_and_round_trips(blank_id, text):
    """For every blank position, ids skip the blank, match the hand count, and decode back."""
    vocab = CharVocab.kaggle(blank_id=blank_id)
    ids = vocab.encode(text)
    assert ids == _expected_ids(text, KAGGLE_CHARACTERS, blank_id)
    assert blank_id not in ids
    assert all(0 <= i < vocab.size for i in ids)
    assert vocab.decode(ids) == text


@settings(max_examples=20, deadline=None)
@given(blank_id=st.integers(0, 59))
def test_every_non_blank_id_decodes_to_its_own_character(blank_id):
    """The id -> character map is complete: each of the 59 non-blank ids has one character."""
    vocab = CharVocab.kaggle(blank_id=blank_id)
    decoded = [vocab.decode([i]) for i in range(vocab.size) if i != blank_id]
    assert "".join(decoded) == KAGGLE_CHARACTERS
    for i in range(vocab.size):
        if i != blank_id:
            assert vocab.encode(vocab.decode([i])) == [i]


@pytest.mark.parametrize("blank_id", [60, 100, -2])
def test_blank_id_outside_the_range_is_rejected(blank_id):
    """blank_id must lie in [0, len(characters)] (-1 meaning the default)."""
    with pytest.raises(ValueError, match="blank_id"):
        CharVocab.kaggle(blank_id=blank_id)


@pytest.mark.parametrize("characters", [("a", "b", "a"), ("a", "bc"), ("a", "")])
def test_characters_must_be_distinct_single_code_points(characters):
    """Repeated characters or multi-character tokens are refused."""
    with pytest.raises(ValueError):
        CharVocab(characters)


# --- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vocab",
    [
        CharVocab.kaggle(),
        CharVocab.kaggle(blank_id=0, replacements={"A": "a", '"': ""}),
        CharVocab(tuple("xyz "), blank_id=2),
        ClassVocab(("hello", "thank you", "book")),
        ClassVocab(()),
    ],
    ids=["kaggle", "kaggle-blank0-replacements", "small-blank2", "classes", "no-classes"],
)
def test_to_json_from_json_round_trip(vocab):
    """from_json(json text of to_json()) rebuilds an equal vocabulary that encodes alike."""
    data = json.loads(json.dumps(vocab.to_json()))
    rebuilt = from_json(data)
    assert type(rebuilt) is type(vocab)
    assert rebuilt == vocab
    if isinstance(vocab, CharVocab):
        assert rebuilt.blank_id == vocab.blank_id
        assert dict(rebuilt.replacements) == dict(vocab.replacements)
        text = "".join(vocab.characters) + "".join(vocab.replacements)
        assert rebuilt.encode(text) == vocab.encode(text)


def test_from_json_rejects_unknown_kind():
    """A JSON object of another kind raises ValueError."""
    with pytest.raises(ValueError, match="kind"):
        from_json({"kind": "words", "words": ["a"]})
    with pytest.raises(ValueError, match="kind"):
        from_json({})


# --- class vocabulary --------------------------------------------------------------------


def test_class_vocab_encodes_a_name_to_a_one_element_list():
    """encode returns [id] of the class; decode maps it back, skipping LABEL_PAD."""
    vocab = ClassVocab(("hello", "thank you", "book"))
    assert vocab.size == 3
    assert vocab.encode("hello") == [0]
    assert vocab.encode("book") == [2]
    assert vocab.decode([1, LABEL_PAD]) == "thank you"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20, unique=True))
def test_class_vocab_round_trips_every_class(classes):
    """Every class encodes to its position and decodes back to itself."""
    vocab = ClassVocab(tuple(classes))
    for position, name in enumerate(classes):
        assert vocab.encode(name) == [position]
        assert vocab.decode(vocab.encode(name)) == name


def test_class_vocab_unknown_class_raises_naming_it():
    """An unknown class raises UnknownTokenError naming the class."""
    vocab = ClassVocab(("hello", "book"))
    with pytest.raises(UnknownTokenError, match="'goodbye'"):
        vocab.encode("goodbye")


def test_class_vocab_rejects_duplicate_names():
    """Two classes with the same name are refused."""
    with pytest.raises(ValueError, match="distinct"):
        ClassVocab(("hello", "book", "hello"))


def test_class_decode_rejects_ids_outside_the_vocabulary():
    """Negative ids (other than LABEL_PAD) and ids past the end are errors, never wrap-around."""
    vocab = ClassVocab(("a", "b", "c"))
    assert vocab.decode([2, LABEL_PAD, 0]) == "c a"
    for bad in (-2, 3):
        with pytest.raises(ValueError, match="outside the vocabulary"):
            vocab.decode([bad])


def test_replacing_a_vocabulary_character_is_rejected():
    """A replacement for a character already in the vocabulary would never apply."""
    with pytest.raises(ValueError, match="already a vocabulary character"):
        CharVocab.kaggle(replacements={"a": "b"})

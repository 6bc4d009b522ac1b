"""Synthetic phrases and whole data sets in the Kaggle asl-fingerspelling layout."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aslx.formats import kaggle_fingerspelling
from aslx.records import writer
from aslx.synthetic.scene import make_clip, make_signer
from aslx.vocab import KAGGLE_CHARACTERS

#: Longest phrase :func:`random_phrase` draws.
MAX_PHRASE_LENGTH = 30

# --- phrases ---------------------------------------------------------------------------------

#: Made-up vocabulary of the synthetic phrases: common short words, names, places and street
#: names, letters only (the real data set spells addresses, names and web addresses).
WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(  # in order, without repeats
        """
        oak pine elm maple cedar birch willow cherry walnut spruce aspen hickory poplar laurel
        magnolia holly ivy hazel juniper cypress sycamore linden alder chestnut acorn meadow
        street road lane drive court avenue way place circle boulevard terrace trail parkway
        highway square ridge crossing point row path loop alley plaza park view hill hills
        lake river creek brook spring springs bay harbor shore beach island valley canyon mesa
        forest woods grove field fields farm ranch garden gardens orchard vineyard mill bridge
        north south east west main market church school college station union center central
        old new first second third fourth fifth sixth seventh tenth high low upper lower
        king queen prince duke bishop royal grand liberty freedom victory pioneer frontier
        john mary james anna lee kim smith brown jones miller davis garcia wilson moore taylor
        thomas white harris martin clark lewis walker young allen wright scott green baker adams
        nelson hill campbell mitchell roberts carter phillips evans turner torres parker collins
        edwards stewart morris murphy cook rogers morgan cooper peterson reed bailey bell kelly
        howard ward cox diaz richardson wood watson brooks bennett gray james hughes price
        sanders myers long ross foster jenkins perry powell russell sullivan fisher henderson
        boston denver austin dallas seattle chicago portland phoenix miami atlanta houston
        tucson omaha tulsa fresno reno salem dover helena boise albany newark buffalo orlando
        tampa raleigh memphis nashville detroit toledo akron dayton madison lincoln jackson
        hello world good morning night happy birthday thank you please sorry welcome home
        coffee tea water apple banana orange lemon grape melon berry bread cheese pizza pasta
        soup salad cookie cake candy honey sugar salt pepper rice bean corn potato tomato
        music movie book story paper letter phone email office store shop bank hotel hospital
        library museum theater airport harbor city town village county state country
        blue red yellow purple pink black silver golden brown violet amber ruby jade
        cat dog horse bird fish bear wolf fox deer rabbit eagle hawk owl duck goose swan
        sun moon star sky cloud rain snow wind storm summer winter autumn fall dawn dusk
        big small little quick slow bright dark warm cold soft loud quiet fresh sweet wild
        friend family mother father sister brother baby child teacher doctor nurse driver
        read write sign spell learn play sing dance walk run swim drive fly cook bake
        love hope peace joy dream light fire stone iron glass steel wood gold
        sunset sunrise rainbow thunder lightning mountain ocean desert prairie glacier
        """.split()
    )
)


def random_phrase(rng: np.random.Generator) -> str:
    """A synthetic phrase of 1–3 words from :data:`WORDS`, at most MAX_PHRASE_LENGTH long."""
    count = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
    while True:
        phrase = " ".join(WORDS[i] for i in rng.integers(len(WORDS), size=count))
        if len(phrase) <= MAX_PHRASE_LENGTH:
            return phrase
        count = max(1, count - 1)


# --- a data set --------------------------------------------------------------------------------

#: Sequence ids of a synthetic data set are FIRST_SEQUENCE_ID, FIRST_SEQUENCE_ID + 1, …
FIRST_SEQUENCE_ID = 1_000_000


@dataclasses.dataclass(frozen=True)
class Summary:
    """What :func:`generate` wrote."""

    phrases: int
    frames: int
    files: int
    signers: int


def synthetic_phrases(
    *, num_phrases: int, num_signers: int = 8, seed: int = 0
) -> Iterator[tuple[int, int, str, np.ndarray]]:
    """Yields ``(sequence_id, participant_id, phrase, landmarks [frames, 543, 3])`` of a
    synthetic data set, deterministically for a seed.

    Signer ``k`` is left-handed when ``k % 5 == 4`` (one signer in five, and at least one from
    five signers on). Phrases are spread evenly over the signers in a seeded random order.
    Each signer and each phrase has its own random stream, so phrase ``i`` does not depend on
    how many phrases are drawn.
    """
    if num_phrases < 0 or num_signers < 1:
        raise ValueError("num_phrases must be >= 0 and num_signers >= 1")
    signers = [
        make_signer(np.random.default_rng([seed, 0, k]), left_handed=k % 5 == 4)
        for k in range(num_signers)
    ]
    participants = np.random.default_rng([seed, 1]).permutation(
        np.arange(num_phrases) % num_signers
    )
    for i, participant in enumerate(participants):
        rng = np.random.default_rng([seed, 2, i])
        phrase = random_phrase(rng)
        landmarks = make_clip(rng, phrase, signers[participant])
        yield FIRST_SEQUENCE_ID + i, int(participant), phrase, landmarks


def generate(
    out: str | os.PathLike,
    *,
    num_phrases: int,
    num_signers: int = 8,
    seed: int = 0,
    phrases_per_file: int = 100,
    progress: bool = False,
) -> Summary:
    """Writes a synthetic fingerspelling data set in the Kaggle asl-fingerspelling layout.

    ``out`` gets ``train.csv``, ``character_to_prediction_index.json`` (the 59 Kaggle
    characters) and ``train_landmarks/<file_id>.parquet`` files of ``phrases_per_file`` phrases
    each; participant ids are signer indices ``0 … num_signers - 1``, sequence ids are unique
    integers from :data:`FIRST_SEQUENCE_ID`. The same arguments give byte-identical files.

    ``progress`` shows a progress bar; the result says what was written.
    """
    counts = {"frames": 0}

    def counted():
        for item in synthetic_phrases(num_phrases=num_phrases, num_signers=num_signers, seed=seed):
            counts["frames"] += len(item[3])
            yield item

    items = tqdm(
        counted(),
        total=num_phrases,
        desc="synthetic phrases",
        unit="phrase",
        disable=None if progress else True,  # None: only on a terminal
    )
    kaggle_fingerspelling.write(
        out,
        items,
        vocabulary={c: i for i, c in enumerate(KAGGLE_CHARACTERS)},
        phrases_per_file=phrases_per_file,
    )
    return Summary(
        phrases=num_phrases,
        frames=counts["frames"],
        files=-(-num_phrases // phrases_per_file),
        signers=num_signers,
    )


def record_set(
    folder: str | os.PathLike,
    *,
    num_phrases: int,
    num_signers: int = 8,
    seed: int = 0,
    val_fraction: float = 0.0,
    num_shards: int = 16,
) -> dict:
    """A synthetic data set (:func:`generate`, into ``folder/raw``) ingested quietly into a
    record set at ``folder/records``: what tests and benchmarks train and read on. Returns the
    record set's metadata."""
    folder = Path(folder)
    generate(folder / "raw", num_phrases=num_phrases, num_signers=num_signers, seed=seed)
    return writer.ingest(
        "kaggle-fingerspelling",
        folder / "raw",
        folder / "records",
        val_fraction=val_fraction,
        num_shards=num_shards,
        progress=False,
        log=lambda line: None,
    )

"""Readers of the raw formats users have. Each yields canonical :class:`Clip` objects.

Every reader module has ``read(src) -> Iterator[Clip | Skipped]`` and ``vocabulary(src)``.
"""

from aslx.formats import kaggle_fingerspelling, kaggle_signs, mp_data, npz, pose_file, spelled
from aslx.formats.clip import Clip, FormatError, Skipped

#: ``--format`` name -> reader module.
READERS = {
    "kaggle-fingerspelling": kaggle_fingerspelling,
    "kaggle-signs": kaggle_signs,
    "mp-data": mp_data,
    "pose": pose_file,
    "npz": npz,
    "npz-spelled": spelled,
}

__all__ = ["READERS", "Clip", "FormatError", "Skipped"]

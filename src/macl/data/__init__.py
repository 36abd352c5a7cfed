"""Multi-label remote-sensing archives, the label-aware sampler and the augmentations."""

from macl.data.base import ArchiveIndex, MultiLabelDataset
from macl.data.errors import ChecksumError, CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.images import read_image

__all__ = [
    "ArchiveIndex",
    "ChecksumError",
    "CorruptImageError",
    "DatasetNotFoundError",
    "LabelFileError",
    "MultiLabelDataset",
    "read_image",
]

"""Multi-label remote-sensing archives, the label-aware sampler and the augmentations."""

from macl.data.base import ArchiveIndex, MultiLabelDataset
from macl.data.cache import CachedArchive
from macl.data.dlrsd import DLRSD
from macl.data.errors import ChecksumError, CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.folder import FolderArchive
from macl.data.images import read_image
from macl.data.mlaid import MLAID
from macl.data.registry import ARCHIVES, open_archive
from macl.data.sampler import LabelAwareBatchSampler, RandomBatchSampler, RankSlices
from macl.data.synthetic import SyntheticAerial
from macl.data.ucm import UCMerced
from macl.data.whdld import WHDLD

__all__ = [
    "ARCHIVES",
    "DLRSD",
    "MLAID",
    "WHDLD",
    "ArchiveIndex",
    "CachedArchive",
    "ChecksumError",
    "CorruptImageError",
    "DatasetNotFoundError",
    "FolderArchive",
    "LabelAwareBatchSampler",
    "LabelFileError",
    "MultiLabelDataset",
    "RandomBatchSampler",
    "RankSlices",
    "SyntheticAerial",
    "UCMerced",
    "open_archive",
    "read_image",
]

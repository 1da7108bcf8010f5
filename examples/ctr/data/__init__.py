"""CTR datasets for the examples: loaders, caching and batch iteration.

Usage: ``ds = load_dataset("amazon-sports", "../shared/data")``.
"""

from examples.ctr.data.pipeline import Batch
from examples.ctr.data.pipeline import BatchIterator
from examples.ctr.data.registry import DATASETS
from examples.ctr.data.registry import load_dataset
from examples.ctr.data.schema import CTRDataset
from examples.ctr.data.schema import FieldSpec
from examples.ctr.data.schema import Split

__all__ = (
  "Batch",
  "BatchIterator",
  "CTRDataset",
  "DATASETS",
  "FieldSpec",
  "Split",
  "load_dataset",
)

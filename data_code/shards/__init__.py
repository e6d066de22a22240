"""Token shards: the filtered corpus tokenized, split, reweighted, shuffled and packed into numpy-readable files."""

from data_code.shards.build import build_shards
from data_code.shards.checks import check_eos_count, check_nonempty, check_split_disjoint, check_token_ids
from data_code.shards.config import ShardConfig
from data_code.shards.trace import trace

__all__ = [
    "ShardConfig",
    "build_shards",
    "check_eos_count",
    "check_nonempty",
    "check_split_disjoint",
    "check_token_ids",
    "trace",
]

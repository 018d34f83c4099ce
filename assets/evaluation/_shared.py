"""What the evaluation and tuning asset modules share: the held-out split's config."""

import dagster as dg

from assets.common._shared import params_config, params_of
from assets.evaluation.offline import SplitSpec


class _SplitMethods(dg.Config):
    def split_spec(self) -> SplitSpec:
        """The :class:`~assets.evaluation.offline.SplitSpec` these fields describe."""
        return params_of(self, SplitSpec)


SplitConfig = params_config(
    SplitSpec,
    "SplitConfig",
    "The held-out split of a family's evaluation "
    "(:class:`~assets.evaluation.offline.SplitSpec`); its tuning carves validation by the same rule.",
    base=_SplitMethods,
    rename={"method": "split", "n": "holdout_n", "seed": "split_seed"},
    exclude=("min_train",),
)

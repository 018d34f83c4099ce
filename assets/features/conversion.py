"""The conversion model: gradient-boosted trees on time-aligned samples, its measures and its
feature choice.

Trained on a rolling window of feature days whose labels have matured; the most recent of them
are held out (``holdout_days``), and the training days end ``horizon_days`` before the first
held-out day. That purge matters: an opportunity appears on many consecutive days, and a
training day whose label window (D, D + horizon] overlaps the held-out days' would hand the
model their outcome (the first version of this split, without the purge, measured AUC 0.91
where the purged split measures the honest figure). The model is a LightGBM booster saved as
its own text format plus a JSON list of feature names (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from assets.features.export import NON_FEATURES


@dataclass(frozen=True)
class ConversionParams:
    """The conversion model's sample window and trees.

    Attributes
    ----------
    horizon_days : int
        A sample of day D is positive when its opportunity converts in ``(D, D + horizon_days]``.
    train_days : int
        Feature days the model learns from.
    holdout_days : int
        The window's most recent days, held out to measure the model (AUC, top-decile lift); the
        training days end ``horizon_days`` before the first of them (see :attr:`window_days`).
    num_leaves, learning_rate, n_estimators, min_child_samples : int, float, int, int
        LightGBM's tree size, shrinkage, rounds and leaf support.
    feature_list : str
        The name of the feature list the champion's importances write (and the subset export
        uses); the hand-written list of that name is the cold-start default.
    min_gain_share : float
        A feature enters the learned list when its share of the total split gain is at least this.
    seed : int
    """

    horizon_days: int = 14
    train_days: int = 5
    holdout_days: int = 2
    num_leaves: int = 15
    learning_rate: float = 0.05
    n_estimators: int = 200
    min_child_samples: int = 40
    feature_list: str = "conversion_v1"
    min_gain_share: float = 0.01
    seed: int = 7

    @property
    def window_days(self) -> int:
        """Feature days in the sample window: the training days, the purge between them and the
        held-out days (``horizon_days - 1`` days, whose samples are not used) and the held-out days."""
        return self.train_days + self.horizon_days - 1 + self.holdout_days

    def lightgbm(self) -> dict:
        return {
            "objective": "binary",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": 2,
            "verbose": -1,
        }


def feature_columns(samples: pd.DataFrame) -> list[str]:
    return [c for c in samples.columns if c not in NON_FEATURES]


def split_holdout(
    samples: pd.DataFrame, holdout_days: int, horizon_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, holdout)``: the holdout is the ``holdout_days`` latest feature days; the training
    days are those whose label window ends by the first held-out day (``D + horizon <= H``), so
    no training label overlaps a held-out one."""
    days = sorted(samples["feature_day"].unique())
    if len(days) <= holdout_days:
        raise ValueError(f"{len(days)} feature day(s) cannot hold out {holdout_days} and still train")
    first = date.fromisoformat(days[-holdout_days])
    last_train = (first - timedelta(days=horizon_days)).isoformat()
    train = samples[samples["feature_day"] <= last_train]
    if train.empty:
        raise ValueError(f"no feature day on or before {last_train}, {horizon_days} days before the holdout")
    return train, samples[samples["feature_day"] >= first.isoformat()]


@dataclass
class ConversionModel:
    """A trained booster and the feature columns it reads, in order."""

    booster: object
    features: list[str]
    params: dict

    def predict(self, samples: pd.DataFrame) -> np.ndarray:
        """Conversion probability per row (missing feature columns read as NaN)."""
        x = samples.reindex(columns=self.features).to_numpy(np.float64)
        return np.asarray(self.booster.predict(x), np.float64)

    def gain_shares(self) -> pd.Series:
        """Each feature's share of the total split gain, largest first."""
        gain = np.asarray(self.booster.feature_importance(importance_type="gain"), np.float64)
        s = pd.Series(gain / max(gain.sum(), 1e-12), index=self.features)
        return s.sort_values(ascending=False, kind="stable")

    def selected_features(self, min_gain_share: float) -> list[str]:
        """The features whose gain share reaches ``min_gain_share``, largest first."""
        s = self.gain_shares()
        return s[s >= min_gain_share].index.tolist()

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "booster.txt"))
        (folder / "model.json").write_text(json.dumps({"features": self.features, "params": self.params}))

    @classmethod
    def load(cls, folder: Path) -> ConversionModel:
        import lightgbm as lgb

        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text())
        return cls(lgb.Booster(model_file=str(folder / "booster.txt")), meta["features"], meta["params"])


def fit_conversion(train: pd.DataFrame, params: ConversionParams = ConversionParams()) -> ConversionModel:
    """LightGBM on every feature column of ``train`` (NaN is LightGBM's missing value)."""
    import lightgbm as lgb

    if train["label"].nunique() < 2:
        raise ValueError(f"the training days have one class only (label {train['label'].iloc[0]})")
    cols = feature_columns(train)
    data = lgb.Dataset(train[cols].to_numpy(np.float64), train["label"].to_numpy(), feature_name=cols)
    booster = lgb.train(params.lightgbm(), data, num_boost_round=params.n_estimators)
    return ConversionModel(booster, cols, {**asdict(params), "train_rows": len(train)})


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN with one class only."""
    y, s = np.asarray(labels), np.asarray(scores, np.float64)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """``(conversion rate of the top-scored tenth, base rate, their ratio)``."""
    y = np.asarray(labels, np.float64)
    n = max(1, len(y) // 10)
    top = np.argsort(-np.asarray(scores, np.float64), kind="stable")[:n]
    base = float(y.mean()) if len(y) else float("nan")
    rate = float(y[top].mean()) if len(y) else float("nan")
    return rate, base, (rate / base if base else float("nan"))


def logistic_baseline(train: pd.DataFrame, holdout: pd.DataFrame) -> np.ndarray:
    """Holdout scores of a logistic regression on ``log1p`` of the features (NaN as 0), the
    linear baseline the boosted model is compared with."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = feature_columns(train)

    def x(df):
        return np.log1p(np.clip(df[cols].fillna(0).to_numpy(np.float64), 0, None))

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(x(train), train["label"].to_numpy())
    return model.predict_proba(x(holdout))[:, 1]


def measure(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """``auc``, ``top_decile_rate``, ``base_rate`` and ``top_decile_lift`` of ``scores``."""
    rate, base, lift = top_decile_lift(labels, scores)
    return {"auc": auc(labels, scores), "top_decile_rate": rate, "base_rate": base, "top_decile_lift": lift}

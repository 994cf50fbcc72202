"""How the walk-forward folds are laid out and how each backtest draws its random-entry baseline
(light: the command line imports it at start-up)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Runs:
    """How a backtest's random-entry baseline is drawn."""

    seed: int = 0
    random_runs: int = 50


@dataclass(frozen=True)
class Layout:
    """Walk-forward folds: `folds` test periods of `test_days` days at the end of the dataset,
    each after `train_days` days of training (0: what there is before the first test period,
    at most HELIOS_TRAIN_DAYS)."""

    folds: int = 2
    test_days: int = 3
    train_days: int = 0

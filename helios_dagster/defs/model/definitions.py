"""`model_candidate` (train, export, check, register), `walk_forward` (rolling folds trained the
same way and backtested on the days after each), `candidate_backtest` (the candidate on its
held-out test period, beside ACTIVE) and `active_model` (the gate), with the parity check, a
weekly schedule and a sensor that retrains once enough new data has landed."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
from pydantic import Field

from helios_dagster.defs.model.backtests import backtest_candidate
from helios_dagster.defs.model.backtests import walk_forward as run_walk_forward
from helios_dagster.defs.model.evidence import (
    CandidateBacktest,
    PeriodBacktest,
    WalkForward,
    read_candidate_backtest,
    read_walk_forward,
    write,
)
from helios_dagster.defs.model.gate import gate
from helios_dagster.defs.model.layout import Layout, Runs
from helios_dagster.defs.model.training import DATASET, load_dataset, recheck_parity, train_and_register
from helios_dagster.ml.export import PARITY_TOLERANCE
from helios_dagster.resources import LakeResource
from helios_dagster.schedules import TRAIN_JOB
from helios_dagster.summaries import walk_forward_markdown
from helios_live.models.registry import WALK_FORWARD, Registry, RegistryError
from helios_live.settings import HeliosSettings

T = TypeVar("T")


class BacktestConfig(dg.Config):
    """The random-entry baseline of each backtest: how many seeded draws."""

    seed: int = 0
    random_runs: int = Field(default=50, ge=1, le=10_000)


class WalkForwardConfig(BacktestConfig):
    """Rolling folds at the end of the dataset: `folds` backtests of `test_days` days, each by a
    model trained on the `train_days` days before it (0: what there is before the first fold's
    test days, at most HELIOS_TRAIN_DAYS). The defaults fit the sample's month of BTC-PERP."""

    folds: int = Field(default=2, ge=1, le=20)
    test_days: int = Field(default=3, ge=1, le=365)
    train_days: int = Field(default=0, ge=0, le=36_500)


def latest_candidate(registry: Registry) -> str:
    """The newest registered candidate (walk-forward fold models are not candidates)."""
    for event in reversed(registry.history()):
        if event["action"] == "register" and registry.get(event["version"]).meta.get("role") != WALK_FORWARD:
            return str(event["version"])
    raise RegistryError(f"no model candidate registered in {registry.root}")


def latest_evidence(instance: dg.DagsterInstance, asset: str, read: Callable[[Path], T]) -> T | None:
    """The evidence file named by the latest materialisation of `asset`, if there is one."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None or "evidence" not in materialization.metadata:
        return None
    path = Path(str(materialization.metadata["evidence"].value))
    return read(path) if path.is_file() else None


def _figure(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.text("n/a") if value is None else dg.MetadataValue.float(value)


def _period_metadata(prefix: str, figures: PeriodBacktest) -> dict[str, dg.MetadataValue]:
    return {
        f"{prefix}report": dg.MetadataValue.path(figures.report),
        f"{prefix}version": dg.MetadataValue.text(figures.version),
        f"{prefix}sharpe": _figure(figures.sharpe),
        f"{prefix}total_return": _figure(figures.total_return),
        f"{prefix}max_drawdown": _figure(figures.max_drawdown),
        f"{prefix}trades": dg.MetadataValue.int(figures.trades),
        f"{prefix}beats_random": dg.MetadataValue.bool(figures.beats_random),
        f"{prefix}verdict": dg.MetadataValue.text(figures.summary),
    }


def walk_forward_metadata(evidence: WalkForward, path: Path) -> dict[str, dg.MetadataValue]:
    aggregate = evidence.aggregate()
    metadata = {
        "evidence": dg.MetadataValue.path(str(path)),
        "folds": dg.MetadataValue.md(walk_forward_markdown(evidence)),
        "mean_sharpe": _figure(aggregate.mean_sharpe),
        "min_sharpe": _figure(aggregate.min_sharpe),
        "total_return": _figure(aggregate.total_return),
        "max_drawdown": _figure(aggregate.max_drawdown),
        "folds_beating_random": dg.MetadataValue.int(aggregate.beating_random),
        "trades": dg.MetadataValue.int(aggregate.trades),
    }
    for fold in evidence.folds:
        metadata |= _period_metadata(f"fold_{fold.fold}_", fold.backtest)
    return metadata


def candidate_metadata(evidence: CandidateBacktest, path: Path) -> dict[str, dg.MetadataValue]:
    metadata = {"evidence": dg.MetadataValue.path(str(path)), **_period_metadata("", evidence.candidate)}
    if evidence.active is not None:
        metadata |= _period_metadata("active_", evidence.active)
    metadata["active_compared"] = dg.MetadataValue.text(evidence.skipped or "backtested on the same period")
    return metadata


def build(settings: HeliosSettings) -> dg.Definitions:
    registry = Registry(settings.models_root)

    @dg.asset(
        deps=[dg.AssetKey(DATASET)],
        group_name="model",
        kinds={"pytorch", "onnx"},
        description="Train on the last HELIOS_TRAIN_DAYS of training_dataset (expanding-window folds, baselines), "
        "export ONNX, check parity and leakage, register an immutable bundle. Not promoted here.",
    )
    def model_candidate(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        bundle = train_and_register(settings, lake.lake(), registry, context.log.info)
        test = bundle.meta["metrics"]["test"]
        return dg.MaterializeResult(
            metadata={
                "version": bundle.version,
                "preset": bundle.meta["preset"],
                "parameters": bundle.meta["parameters"],
                "training": bundle.meta["training"],
                "test_model": test["model"],
                "test_baselines": test["baselines"],
                "lift": test["lift"],
                "parity_max_abs_difference": bundle.meta["parity"]["max_abs_difference"],
                "checks": bundle.meta["checks"],
            }
        )

    @dg.asset_check(
        asset=model_candidate,
        blocking=True,
        description=f"onnxruntime vs torch on {1000} real samples, re-run from the registered files: "
        f"max |difference| <= {PARITY_TOLERANCE:g}.",
    )
    def model_onnx_parity(lake: LakeResource) -> dg.AssetCheckResult:
        bundle = registry.get(latest_candidate(registry))
        difference = recheck_parity(bundle, settings, lake.lake())
        return dg.AssetCheckResult(
            passed=difference <= PARITY_TOLERANCE,
            metadata={"version": bundle.version, "max_abs_difference": difference},
        )

    @dg.asset(
        deps=[dg.AssetKey(DATASET)],
        group_name="model",
        kinds={"pytorch"},
        description="Walk-forward: rolling folds at the end of training_dataset, each a model trained as the "
        "candidate is (registered with role walk-forward, never promoted) and backtested on the days after its "
        "window. Per-fold reports and the aggregate are the gate's evidence.",
    )
    def walk_forward(
        context: dg.AssetExecutionContext, config: WalkForwardConfig, lake: LakeResource
    ) -> dg.MaterializeResult:
        out_root = settings.home / "backtests" / "walk-forward" / context.run.run_id
        layout = Layout(config.folds, config.test_days, config.train_days)
        runs = Runs(config.seed, config.random_runs)
        evidence = run_walk_forward(settings, lake.lake(), registry, layout, out_root, runs, context.log.info)
        path = write(evidence, out_root / "walk_forward.json")
        return dg.MaterializeResult(metadata=walk_forward_metadata(evidence, path))

    @dg.asset(
        deps=[model_candidate],
        group_name="model",
        description="Backtests the newest candidate on its held-out test period, and ACTIVE on the same period "
        "(skipped, with the reason, when its base timeframe or feature set differs).",
    )
    def candidate_backtest(
        context: dg.AssetExecutionContext, config: BacktestConfig, lake: LakeResource
    ) -> dg.MaterializeResult:
        version = latest_candidate(registry)
        out_root = settings.home / "backtests" / version / f"gate-{context.run.run_id[:8]}"
        runs = Runs(config.seed, config.random_runs)
        evidence = backtest_candidate(settings, lake.lake(), registry, version, out_root, runs, context.log.info)
        path = write(evidence, out_root / "candidate_backtest.json")
        return dg.MaterializeResult(metadata=candidate_metadata(evidence, path))

    @dg.asset(
        deps=[walk_forward, candidate_backtest],
        group_name="model",
        description="Applies the promotion gate to the newest candidate: ACTIVE moves only if its checks passed, "
        "it meets the balanced-accuracy and ECE thresholds, beats the best baseline classifier, its walk-forward "
        "folds meet the Sharpe and drawdown thresholds and beat random entry, and it is not worse than ACTIVE.",
    )
    def active_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        version = latest_candidate(registry)
        bundle = registry.get(version)
        walk = latest_evidence(context.instance, "walk_forward", read_walk_forward)
        tested = latest_evidence(context.instance, "candidate_backtest", read_candidate_backtest)
        decision = gate(bundle, settings, walk, tested)
        path = decision.write(bundle.path)
        if decision.promote:
            registry.promote(version, decision.summary())
            context.log.info(f"{version} is ACTIVE")
        else:
            registry.reject(version, decision.summary())
            context.log.warning(f"{version} not promoted: {decision.summary()}")
        return dg.MaterializeResult(
            metadata={
                "candidate": version,
                "promoted": decision.promote,
                "reasons": list(decision.reasons),
                "notes": list(decision.notes),
                "active": registry.active() or "",
                "decision": dg.MetadataValue.path(str(path)),
            }
        )

    assets = [model_candidate, walk_forward, candidate_backtest, active_model]
    job = dg.define_asset_job(TRAIN_JOB, selection=dg.AssetSelection.assets(*assets))

    @dg.schedule(
        name="weekly_retrain",
        cron_schedule="0 3 * * 0",
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def weekly_retrain(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"weekly-{context.scheduled_execution_time:%Y-%m-%d}")

    @dg.sensor(
        name="retrain_on_new_data",
        job=job,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def retrain_on_new_data(context: dg.SensorEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
        yield new_data_request(settings, registry, LakeResource(root=str(settings.lake_root)))

    return dg.Definitions(
        assets=assets,
        asset_checks=[model_onnx_parity],
        jobs=[job],
        schedules=[weekly_retrain],
        sensors=[retrain_on_new_data],
    )


def new_data_request(settings: HeliosSettings, registry: Registry, lake: LakeResource) -> dg.RunRequest | dg.SkipReason:
    """Retrain when the dataset holds at least HELIOS_RETRAIN_MIN_NEW_ROWS rows after the
    newest registered model's training window."""
    store = lake.lake()
    try:
        frames, _, (_, last_day) = load_dataset(store, settings)
    except Exception as exc:  # noqa: BLE001 -- no dataset yet is a reason to skip, not to fail
        return dg.SkipReason(f"no training data: {exc}")
    try:
        trained_until = registry.get(latest_candidate(registry)).meta["training_window"]["last_day"]
    except RegistryError:
        return dg.RunRequest(run_key=f"first-model-{last_day}")
    new_rows = sum(int((f["ts"].dt.date.astype(str) > trained_until).sum()) for f in frames)
    if new_rows < settings.retrain.min_new_rows:
        return dg.SkipReason(
            f"{new_rows} new rows since {trained_until}; retraining at {settings.retrain.min_new_rows}"
        )
    return dg.RunRequest(run_key=f"new-data-{last_day}")

"""`model_candidate` (train, export, check, register) and `active_model` (the gate), with the
parity check, a weekly schedule and a sensor that retrains once enough new data has landed."""

from collections.abc import Iterator

import dagster as dg

from helios_dagster.defs.model.training import DATASET, gate, load_dataset, recheck_parity, train_and_register
from helios_dagster.ml.export import PARITY_TOLERANCE
from helios_dagster.resources import LakeResource
from helios_dagster.schedules import TRAIN_JOB
from helios_live.models.registry import Registry, RegistryError
from helios_live.settings import HeliosSettings


def latest_candidate(registry: Registry) -> str:
    registered = [e["version"] for e in registry.history() if e["action"] == "register"]
    if not registered:
        raise RegistryError(f"no model registered in {registry.root}")
    return str(registered[-1])


def build(settings: HeliosSettings) -> dg.Definitions:
    registry = Registry(settings.models_root)

    @dg.asset(
        deps=[dg.AssetKey(DATASET)],
        group_name="model",
        kinds={"pytorch", "onnx"},
        description="Train on the last HELIOS_TRAIN_DAYS of training_dataset (walk-forward folds, baselines), "
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
        deps=[model_candidate],
        group_name="model",
        description="Applies the promotion gate to the newest candidate: ACTIVE moves only if its checks passed "
        "and it meets HELIOS_GATE_MIN_BALANCED_ACCURACY and HELIOS_GATE_MAX_ECE.",
    )
    def active_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        version = latest_candidate(registry)
        reasons = gate(registry.get(version), settings)
        if reasons:
            registry.reject(version, "; ".join(reasons))
            context.log.warning(f"{version} not promoted: {'; '.join(reasons)}")
        else:
            registry.promote(version, "passed the gate")
            context.log.info(f"{version} is ACTIVE")
        return dg.MaterializeResult(
            metadata={
                "candidate": version,
                "promoted": not reasons,
                "reasons": reasons,
                "active": registry.active() or "",
            }
        )

    job = dg.define_asset_job(TRAIN_JOB, selection=dg.AssetSelection.assets(model_candidate, active_model))

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
        assets=[model_candidate, active_model],
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

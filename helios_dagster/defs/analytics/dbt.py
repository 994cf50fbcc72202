"""The dbt project as Dagster assets: one graph from `raw_candles` to the marts.

Each dbt source maps onto the asset that writes it (the lake's datasets, `ledger_export`); dbt
tests are asset checks, singular ones on the model their config names; a failing test keeps
dbt from building what is below it, and its check shows the failing rows (dbt stores them,
`+store_failures`). The warehouse is one DuckDB file, which allows one writer: every asset
that writes it runs in the `warehouse` pool (`dagster instance concurrency set warehouse 1`).
"""

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.dbt_project import using_dagster_dev

from helios_dagster.analytics.publish import publish_marts
from helios_dagster.defs.analytics.ledger import EXPORTED, ledger_key
from helios_live.settings import HeliosSettings

PROJECT_DIR = Path(os.environ.get("HELIOS_DBT_PROJECT_DIR", Path(__file__).resolve().parents[3] / "dbt_project"))
POOL = "warehouse"
GROUP = "analytics"
FAILED_ROWS_SHOWN = 20
# dbt's lake sources carry the names of the assets that write them.
LAKE_ASSETS = ("candles", "features", "labels")


class HeliosTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = manifest["sources"].get(unique_id)
        if props is not None:
            return spec.replace_attributes(key=source_asset_key(props["source_name"], props["name"]))
        return spec.replace_attributes(group_name=GROUP)


def source_asset_key(source: str, table: str) -> dg.AssetKey:
    if source == "ledger" and table in EXPORTED:
        return ledger_key(table)
    if source == "lake" and table in LAKE_ASSETS:
        return dg.AssetKey(table)
    raise ValueError(f"dbt source {source}.{table} has no Dagster asset that writes it (helios_dagster/defs/analytics)")


def warehouse_path(settings: HeliosSettings) -> Path:
    return settings.home.resolve() / "warehouse" / "helios.duckdb"


def dbt_env(settings: HeliosSettings) -> dict[str, str]:
    """What profiles.yml and sources.yml read: absolute paths from the settings, so dbt finds
    the same lake and warehouse whatever directory it runs in."""
    return {
        "HELIOS_LAKE_ROOT": str(settings.lake_root.resolve()),
        "HELIOS_WAREHOUSE_PATH": str(warehouse_path(settings)),
    }


def prepared_project(settings: HeliosSettings) -> DbtProject:
    """The project with a manifest: `dagster dev` re-parses on every load (dagster-dbt's habit);
    anywhere else a missing manifest (a fresh clone) is parsed once here, with no manual step."""
    os.environ.update(dbt_env(settings))
    project = DbtProject(project_dir=PROJECT_DIR)
    if using_dagster_dev() or not project.manifest_path.exists():
        # dagster-dbt's own preparer looks for `dbt` on PATH, which an unactivated venv lacks
        dbt_cli(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


def dbt_cli(project: DbtProject) -> DbtCliResource:
    """dbt from this interpreter's environment, whether or not it is activated."""
    beside = Path(sys.executable).with_name("dbt")
    return DbtCliResource(project_dir=project, dbt_executable=str(beside) if beside.exists() else "dbt")


def build_dbt_assets(settings: HeliosSettings) -> tuple[dg.AssetsDefinition, DbtCliResource]:
    project = prepared_project(settings)
    translator = HeliosTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    @dbt_assets(
        manifest=project.manifest_path, project=project, dagster_dbt_translator=translator, name="helios_dbt", pool=POOL
    )
    def helios_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        os.environ.update(dbt_env(settings))
        warehouse_path(settings).parent.mkdir(parents=True, exist_ok=True)
        invocation = dbt.cli(["build"], context=context, raise_on_error=False)
        failed: list[dg.AssetCheckResult] = []
        try:
            for event in invocation.stream():
                if isinstance(event, dg.AssetCheckResult) and not event.passed:
                    failed.append(event)  # its rows are read once dbt has let go of the warehouse
                else:
                    yield event
            shown = [_with_failed_rows(c, invocation.manifest, warehouse_path(settings)) for c in failed]
            yield from shown
            error = invocation.get_error()
            if error is not None:
                raise dg.Failure(_failure_text(error, shown), metadata={"failed_checks": len(shown)})
            published = publish_marts(warehouse_path(settings), settings.home.resolve())
            context.log.info(f"published {', '.join(published)} for the live service and `helios report`")
        finally:
            shutil.rmtree(invocation.target_path, ignore_errors=True)  # dbt's per-run folder

    return helios_dbt, dbt_cli(project)


def _with_failed_rows(check: dg.AssetCheckResult, manifest: Mapping[str, Any], warehouse: Path) -> dg.AssetCheckResult:
    unique_id = check.metadata.get("unique_id")
    node = manifest["nodes"].get(getattr(unique_id, "value", unique_id), {})
    relation, rows = node.get("relation_name"), ""
    if relation:
        try:
            with duckdb.connect(str(warehouse), read_only=True) as connection:
                frame = connection.sql(f"select * from {relation} limit {FAILED_ROWS_SHOWN}").df()  # noqa: S608
            rows = _markdown(frame.astype(str).values.tolist(), list(frame.columns)) if not frame.empty else ""
        except duckdb.Error as exc:
            rows = f"could not read {relation}: {exc}"
    metadata = {
        **check.metadata,
        "model": ", ".join(node.get("depends_on", {}).get("nodes", [])) or "unknown",
        "failing_rows": dg.MetadataValue.md(rows or "(dbt stored no rows)"),
        "failing_rows_table": relation or "none",
    }
    return check.with_metadata(metadata)


def _failure_text(error: Exception, failed: list[dg.AssetCheckResult]) -> str:
    """What failed, by test, model and rows, so that the run's error says it without the UI."""
    lines = [f"dbt build failed: {error}".splitlines()[0]]
    for check in failed:
        rows = getattr(check.metadata.get("failing_rows"), "value", "")
        model = getattr(check.metadata.get("model"), "value", "")
        lines.append(f"test {check.check_name} on {model} failed; first rows:\n{rows}")
    return "\n".join(lines)


def _markdown(rows: list[list[str]], columns: list[str]) -> str:
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    return "\n".join(lines + [" | ".join(row) for row in rows])

"""`ledger/<table>`: every ledger's tables as Parquet in the lake, for dbt (ledger_export.py).
One asset per table, written together: dbt's sources map onto them one to one."""

from collections.abc import Iterator

import dagster as dg

from helios_dagster.analytics.ledger_export import SOURCES, TABLES, LedgerSource, discover, export_ledgers
from helios_live.settings import HeliosSettings

PREFIX = "ledger"
EXPORTED = (*TABLES, SOURCES)


class LedgerExportConfig(dg.Config):
    # name -> SQLAlchemy URL; empty: the configured ledger, the demo's and every backtest's
    ledgers: dict[str, str] = {}


def ledger_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([PREFIX, table])


def _sources(settings: HeliosSettings, config: LedgerExportConfig) -> list[LedgerSource]:
    if not config.ledgers:
        return discover(settings)
    capital = settings.trading.capital
    kinds = {"live": "live", "demo": "demo"}
    return [LedgerSource(n, url, kinds.get(n, "backtest"), capital) for n, url in config.ledgers.items()]


def build_ledger_export(settings: HeliosSettings) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="ledger_export",
        group_name="analytics",
        specs=[
            dg.AssetSpec(
                ledger_key(t), description=f"The ledgers' `{t}`, exported to the lake for dbt.", skippable=False
            )
            for t in EXPORTED
        ],
        description="The ledgers' tables (live, demo, backtests) exported to the lake, where dbt reads them.",
    )
    def ledger_export(context: dg.AssetExecutionContext, config: LedgerExportConfig) -> Iterator[dg.MaterializeResult]:
        result = export_ledgers(_sources(settings, config), settings.lake_root, say=context.log.info)
        for problem in result.problems:
            context.log.warning(problem)
        if not result.rows:
            context.log.warning("no ledger to export: the analytics' ledger marts will be empty")
        for table in EXPORTED:
            rows = {name: 1 if table == SOURCES else counts[table] for name, counts in result.rows.items()}
            yield dg.MaterializeResult(
                asset_key=ledger_key(table),
                metadata={
                    "rows": sum(rows.values()),
                    "ledgers": dg.MetadataValue.json(rows),
                    "problems": dg.MetadataValue.json(result.problems),
                },
            )

    return ledger_export

"""
OpenLineage for the import operators: the source tables a query reads, and the Trackly endpoint.

Needs the optional OpenLineage provider (``pip install airflow-provider-trackly[openlineage]``).
Only the operators' OpenLineage methods import this module, when the listener calls them, so
neither it nor OpenLineage loads when a DAG is parsed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.openlineage.facet import (
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    RunFacet,
    SQLJobFacet,
)
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.sqlparser import DatabaseInfo, SQLParser
from attrs import define, field

if TYPE_CHECKING:  # the engine's summary; imported for types only, so utils never loads the engine
    from trackly_provider.operators._engine.tally import ImportTally
    from trackly_provider.trackly_api.entities import Entity


RUN_FACET = "trackly_import"
# The facet's fields are documented in docs/lineage-and-assets.md; no schema is published yet.
FACET_SCHEMA = "urn:airflow-provider-trackly:facet:TracklyImportRunFacet:1"
# A pyformat driver's placeholders (%s, %(name)s) and its escaped percent sign (%%).
_PYFORMAT = re.compile(r"%\(\w+\)s|%s|%%")


@define
class TracklyImportRunFacet(RunFacet):
    """The import's counts, as in XCom ``return_value`` without the error list (no record values)."""

    entity: str
    rows_read: int
    records_sent: int
    success_count: int
    duplicates_skipped: int
    error_count: int
    errors_by_code: dict[str, int] = field(factory=dict)
    dry_run: bool = False

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA


def parseable_sql(sql: str, placeholder: str) -> str:
    """
    ``sql`` as the SQL parser can read it: for a ``%s`` driver, placeholders become NULL and ``%%``
    the ``%`` it stands for (the driver does the same, inside quotes too). ``?`` drivers: unchanged.
    """
    if placeholder != "%s":
        return sql
    return _PYFORMAT.sub(lambda match: "%" if match.group(0) == "%%" else "NULL", sql)


def source_lineage(hook: DbApiHook, sql: str) -> OperatorLineage:
    """The tables ``sql`` reads, named as the common-sql operators name them for that connection."""
    connection = hook.get_connection(getattr(hook, hook.conn_name_attr))
    database_info = hook.get_openlineage_database_info(connection)
    dialect = hook.get_openlineage_database_dialect(connection)
    default_schema = hook.get_openlineage_default_schema()
    use_connection = database_info is not None  # the hook can also read the tables' columns
    if database_info is None:  # a hook without OpenLineage support (SQLite's): named from the SQL alone
        database_info, dialect, default_schema = fallback_naming(connection, dialect, default_schema)
    parser = SQLParser(dialect=dialect, default_schema=default_schema)
    lineage = parser.generate_openlineage_metadata_from_sql(
        sql=parseable_sql(sql, hook.placeholder),
        hook=hook,
        database_info=database_info,
        sqlalchemy_engine=hook.get_sqlalchemy_engine() if use_connection else None,
        use_connection=use_connection,
    )
    lineage.job_facets["sql"] = SQLJobFacet(query=SQLParser.normalize_sql(sql))
    return lineage


def fallback_naming(
    connection: Any, dialect: str, default_schema: str | None
) -> tuple[DatabaseInfo, str, str | None]:
    """
    Namespace, SQL dialect and default schema for a connection whose hook names nothing.

    SQLite: ``sqlite://<file path>``, tables in schema ``main`` (SQLite's name for the file's own
    tables). Others: ``<conn_type>://<host:port>``, with the hook's dialect and default schema.
    """
    if connection.conn_type == "sqlite":
        return DatabaseInfo(scheme="sqlite", authority=connection.host or ""), "sqlite", "main"
    authority = DbApiHook.get_openlineage_authority_part(connection) or ""
    return DatabaseInfo(scheme=connection.conn_type, authority=authority), dialect, default_schema


def endpoint_dataset(namespace: str, dataset: str, imported: int | None = None) -> OutputDataset:
    """
    The Trackly endpoint as a dataset (``Entity.dataset``: ``history/clicks``, ``contacts``...), with
    how many records it stored when that is known.
    """
    facets: dict[str, Any] = {}
    if imported is not None:
        facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=imported)
    return OutputDataset(namespace=namespace, name=dataset, outputFacets=facets)


def import_lineage(
    hook: DbApiHook, sql: str, namespace: str, entity: Entity, tally: ImportTally | None = None
) -> OperatorLineage:
    """Inputs from ``sql``, the endpoint as output; with the ``tally``, its counts."""
    lineage = source_lineage(hook, sql)
    imported = None if tally is None or tally.dry_run else tally.success_count
    lineage.outputs = [endpoint_dataset(namespace, entity.dataset, imported)]
    if tally is not None:
        lineage.run_facets[RUN_FACET] = TracklyImportRunFacet(entity=entity.name, **tally.counts())
    return lineage

"""BaseHistoryImportOperator: stream a SQL query's rows into one of Trackly's history endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseOperator

from trackly_provider.database.ledger import ImportLedger, import_partition
from trackly_provider.database.rejects import RejectsTable
from trackly_provider.database.source import sql_hook
from trackly_provider.database.tables import checked_table_name
from trackly_provider.exceptions import (
    TracklyConfigError,
    TracklyErrorRateExceededError,
    TracklyTransientError,
    TracklyUnconfirmedRecordsError,
)
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.operators._engine import import_log, import_tables
from trackly_provider.operators._engine.confirmations import UNKNOWN_OUTCOME_CHOICES
from trackly_provider.operators._engine.import_arguments import (
    as_flag,
    as_seconds,
    check_choice,
    check_entity,
    check_hook_params,
    check_limits,
    checked_hook_params,
    checked_region,
    checked_trackly_hook_params,
    is_template,
    ledger_table_of,
)
from trackly_provider.operators._engine.import_run import ImportRun, RunArguments
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.trackly_api.limits import MAX_RECORDS_PER_REQUEST
from trackly_provider.utils.assets import annotate_asset_events, asset_event_extra
from trackly_provider.version_compat import AirflowNotFoundException

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from trackly_provider.operators._engine.tally import ImportTally

DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_LEDGER_LOCK_TIMEOUT = 3600.0  # seconds


class BaseHistoryImportOperator(BaseOperator):
    """
    Import history records from a SQL query into Trackly; each subclass names its ``entity``.

    The base of the Click, Send and Revenue import operators; a subclass sets the class attribute
    ``entity``. ``execute`` hands the hooks to an ``ImportRun`` (``_engine/import_run.py``: its steps).

    The query's column names are the record fields (alias columns to match, ``SELECT sent_at AS
    timestamp``); other columns are ignored. Datetimes are sent as ISO 8601 in UTC; naive datetimes
    and offset-less text are taken as UTC. Rows are streamed (server-side cursor where the driver
    has one), so memory does not grow with the result.

    Rows with a NULL or empty required value or an invalid one are not sent and count as errors with
    the API's own code. Every row read ends up imported, duplicate or error.

    :param sql: the SELECT to run, or a path to a ``.sql`` file. (templated)
    :param sql_conn_id: any Airflow connection whose hook is a common-sql ``DbApiHook``.
    :param sql_hook_params: keyword arguments of that hook's class, as common-sql's ``hook_params``
        (PostgreSQL's ``{"options": "-c search_path=sales"}``...), for the source's hook and the
        ledger's and rejects table's on its connection. (templated: shown in the UI, so no secrets)
    :param parameters: bind parameters passed to the driver with ``sql``. Datetimes are adapted to
        compare correctly with UTC timestamp columns (SQLite text, MySQL DATETIME). (templated)
    :param trackly_conn_id: the Trackly connection.
    :param trackly_hook_params: keyword arguments of ``TracklyHook`` that override the connection's
        extras for this task (``{"max_attempts": 1, "request_timeout": 30}``...); a key it does not
        take raises ``TracklyConfigError`` at parse time. (templated: shown in the UI, so no secrets)
    :param batch_size: records per request, 1 to 1,000.
    :param max_error_rate: the task fails when ``error_count / rows_read`` exceeds this, after every
        row was processed and the counts were pushed to XCom (0.0: any error fails the task).
    :param max_in_flight: requests open at once while the next rows are read (1: strictly serial).
        The first request is sent alone, so a bad key costs one request. Memory stays about
        ``max_in_flight + 1`` batches whatever the row count.
    :param dry_run: read and validate every row and check the key (``GET /api/v2/lists``), but send
        nothing; the summary says how many records a real run would send. ``True``/``False``, or
        a template rendering to ``"True"``/``"False"`` such as ``"{{ params.dry_run }}"``. (templated)
    :param rejects_table: a table to write each rejected row to (task instance, row index, message
        id, code, error text; never a record's other values), created if missing. A retry of the
        same task instance replaces that instance's rows. Off when not set.
    :param rejects_conn_id: the SQL connection of ``rejects_table``; the source's by default.
    :param ledger_table: a table recording, per partition, the fingerprint of every record Trackly
        confirmed, so that a rerun leaves them out (docs/ledger.md, "The ledger"). None (the
        default): ``trackly_import_ledger`` for an entity Trackly does not deduplicate (revenue,
        which always keeps one), no ledger for the others (clicks, sends), where one saves a rerun
        from sending what was confirmed. An empty or blank value, as given or as rendered, means
        ``trackly_import_ledger``, never "no ledger". (templated)
    :param ledger_conn_id: the SQL connection of ``ledger_table``; the source's by default. It cannot
        be a SQLite source (the streaming read locks the file).
    :param ledger_partition: the ledger's name for the records of this import; by default the
        entity, the Trackly connection and the ``parameters`` (a day's bounds), so that every rerun
        of that day finds them, even after the SQL was edited; a query without parameters is
        named by its rendered text instead (``ledger.default_partition``). Set it when the
        parameters do not say which rows the query reads. (templated)
    :param ledger_lock_timeout: how long an import waits while another import of the same ledger
        partition runs (seconds, or a ``timedelta``; default one hour). The ledger's database holds
        the lock, which dies with its holder (docs/ledger.md: "One import of a partition at a time"). When
        the bound runs out the task fails at once, without retries
        (``TracklyPartitionLockedError``), having sent nothing.
    :param default_region: the CLDR region (``"US"``, ``"GB"``...) of phone numbers written without a
        country code (``4155550100``, ``(415) 555-0100``, a ``BIGINT`` column); None (the default):
        such numbers are rejected. Every phone field is sent in E.164 (docs/operators.md: "Phone numbers").
    :param on_unknown_outcome: what to do with records an earlier run sent without getting an
        answer: ``fail`` (default: leave them out, and fail after the rest is imported),
        ``assume_imported`` (you checked in Trackly: they were stored) or ``resend`` (you checked:
        they were not). (templated)
    :return: ``rows_read``, ``success_count``, ``error_count``, ``duplicates_skipped``, ``batches``,
        ``errors_by_code`` (every error counted by code, summing to ``error_count``), up to 100
        ``errors`` (``index`` in the query result, ``message_id``, ``code``, ``error``) and
        ``dry_run``; a dry run adds ``records_to_send``; an import with a ledger adds ``ledger``.
        Also pushed when the task fails: on ``max_error_rate`` or records of unknown outcome (the
        import finished), and on any error that ended the import early (the source lost, the API
        down, a rejected key, a bug), where it holds the counts reached and adds ``failed``, the
        exception's type name (``"TracklyRetriesExhaustedError"``...); rows read but not sent or
        unanswered are then not counted, so the three counts may sum to less than ``rows_read``.
    :raises TypeError: when built without an ``entity``: this class itself, or a subclass that sets
        none. Use one of the three import operators, or set ``entity`` in the subclass.
    """

    entity: ClassVar[Entity]
    template_fields: Sequence[str] = (
        "sql_hook_params",  # first: a template's {{ task.sql_placeholder }} builds the hook with them
        "sql",
        "parameters",
        "trackly_hook_params",
        "dry_run_import",
        "ledger_table",
        "ledger_partition",
        "on_unknown_outcome",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "sql": "sql",
        "parameters": "json",
        "sql_hook_params": "json",
        "trackly_hook_params": "json",
    }
    ui_color = "#fde8c8"

    def __init__(
        self,
        *,
        sql: str,
        sql_conn_id: str,
        sql_hook_params: dict[str, Any] | None = None,
        parameters: Any = None,
        trackly_conn_id: str = TracklyHook.default_conn_name,
        trackly_hook_params: dict[str, Any] | None = None,
        batch_size: int = MAX_RECORDS_PER_REQUEST,
        max_error_rate: float = 0.0,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        dry_run: bool | str = False,
        rejects_table: str | None = None,
        rejects_conn_id: str | None = None,
        ledger_table: str | None = None,
        ledger_conn_id: str | None = None,
        ledger_partition: str | None = None,
        ledger_lock_timeout: float | timedelta = DEFAULT_LEDGER_LOCK_TIMEOUT,
        on_unknown_outcome: str = "fail",
        default_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_entity(type(self), BaseHistoryImportOperator)
        super().__init__(**kwargs)
        check_limits(batch_size, max_error_rate, max_in_flight)
        check_hook_params(sql_hook_params, trackly_hook_params)  # a template's: once rendered
        self.sql = sql
        self._sql_template = sql  # as written, for the ledger partition's check (``sql`` is rendered)
        self.sql_conn_id = sql_conn_id
        self.sql_hook_params = sql_hook_params
        self.parameters = parameters
        self.trackly_conn_id = trackly_conn_id
        self.trackly_hook_params = trackly_hook_params
        self.batch_size = batch_size
        self.max_error_rate = max_error_rate
        self.max_in_flight = max_in_flight
        self.dry_run_import = dry_run  # not ``dry_run``: BaseOperator.dry_run() is a method Airflow calls
        self.rejects_table = checked_table_name(rejects_table) if rejects_table else None
        self.rejects_conn_id = rejects_conn_id or sql_conn_id
        self.ledger_table = ledger_table
        if not is_template(ledger_table):
            ledger_table_of(self.entity, ledger_table)  # a template is checked once rendered
        self.ledger_conn_id = ledger_conn_id or sql_conn_id
        self.ledger_partition = ledger_partition
        self.ledger_lock_timeout = as_seconds("ledger_lock_timeout", ledger_lock_timeout)
        self.on_unknown_outcome = on_unknown_outcome
        self.default_region = checked_region(default_region)
        self._run: ImportRun | None = None  # the last run, for its lineage

    @cached_property
    def source_hook(self) -> DbApiHook:
        """The SQL source's hook (with ``sql_hook_params``), resolved at run time, never at parse time."""
        return self._sql_hook(self.sql_conn_id)

    @property
    def sql_placeholder(self) -> str:
        """The source driver's bind placeholder (``?`` or ``%s``), for portable SQL templates."""
        return self.source_hook.placeholder

    @cached_property
    def trackly_hook(self) -> TracklyHook:
        """The Trackly connection's hook, with ``trackly_hook_params`` as its keyword arguments."""
        return TracklyHook(self.trackly_conn_id, **checked_trackly_hook_params(self.trackly_hook_params))

    def _log_start(self, run: ImportRun) -> None:
        """
        Read the Trackly connection (nothing is sent), then log the run's first line: the entity,
        the day or parameters, the connections and the Trackly host.

        :raises TracklyConfigError: ``trackly_conn_id`` names no connection, saying how to create it
            (as a missing ``sql_conn_id`` does); no retry can fix it.
        """
        try:
            base_url = self.trackly_hook.settings.base_url
        except AirflowNotFoundException:
            conn_id = self.trackly_conn_id
            raise TracklyConfigError(
                f"Trackly connection '{conn_id}' (trackly_conn_id) is not defined: create it in the UI "
                f"(Admin > Connections, type 'Trackly SMS') or set AIRFLOW_CONN_{conn_id.upper()}."
            ) from None
        arguments = run.arguments
        connections = (self.sql_conn_id, self.trackly_conn_id, import_log.url_host(base_url))
        import_log.started(self.log, self.entity, arguments.parameters, connections, arguments.dry_run)

    def _sql_hook(self, conn_id: str, argument: str = "sql_conn_id") -> DbApiHook:
        """
        A SQL connection's hook; ``sql_hook_params`` apply to the source's connection. ``argument``:
        the operator's argument that named it, for the error when it is not defined.
        """
        if conn_id != self.sql_conn_id:
            return sql_hook(conn_id, argument=argument)
        return sql_hook(conn_id, checked_hook_params("sql_hook_params", self.sql_hook_params))

    def execute(self, context: Context) -> dict[str, Any]:
        run = self._run = ImportRun(self.entity, self._run_arguments(), self.log)
        check_choice("on_unknown_outcome", self.on_unknown_outcome, UNKNOWN_OUTCOME_CHOICES)
        ledger_table = ledger_table_of(self.entity, self.ledger_table)  # as rendered
        trackly_hook = self.trackly_hook  # its arguments are checked before anything is opened
        unknown_message = None
        try:
            self._log_start(run)  # reads the Trackly connection before any other is opened
            with (
                self._open_rejects_table(context) as rejects,
                self._open_ledger(ledger_table, context, run.tally.dry_run) as ledger,
            ):
                run.start(self.source_hook, trackly_hook, rejects, ledger)
                run.import_rows()
                unknown_message = run.finish()
        except BaseException as exc:  # a task timeout or kill too: what was counted is pushed first
            self._push_stopped_early(context, run, exc)
            if isinstance(exc, TracklyTransientError):
                raise type(exc)(
                    f"{exc} {run.tally.confirmed:,} of {import_log.plural(run.tally.rows_read, 'row')} "
                    f"read {'was' if run.tally.confirmed == 1 else 'were'} confirmed "
                    f"before the failure. {import_log.rerun_advice(self.entity, ledger_table)}"
                ) from None
            raise
        finally:
            trackly_hook.close()
        summary, tally = run.summary(), run.tally
        run.log_outcome()
        if unknown_message:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise TracklyUnconfirmedRecordsError(unknown_message)
        if tally.error_rate > self.max_error_rate:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise TracklyErrorRateExceededError(import_log.error_rate_exceeded(tally, self.max_error_rate))
        annotate_asset_events(context, self.outlets, asset_event_extra(self.entity, self.parameters, tally))
        return summary

    def _run_arguments(self) -> RunArguments:
        """The arguments an ``ImportRun`` reads, as rendered (``dry_run`` checked here)."""
        return RunArguments(
            sql=self.sql,
            parameters=self.parameters,
            batch_size=self.batch_size,
            max_in_flight=self.max_in_flight,
            dry_run=as_flag("dry_run", self.dry_run_import),
            on_unknown_outcome=self.on_unknown_outcome,
            default_region=self.default_region,
            rejects_table=self.rejects_table,
            rejects_conn_id=self.rejects_conn_id,
            sql_conn_id=self.sql_conn_id,
            trackly_conn_id=self.trackly_conn_id,
            opt_ins={
                opt_in.field: getattr(self, opt_in.argument, False) is True for opt_in in self.entity.opt_ins
            },
        )

    def _push_stopped_early(self, context: Context, run: ImportRun, exc: BaseException) -> None:
        """Push the counts reached before ``exc`` ended the import. Never raises: ``exc`` must propagate."""
        try:
            context["ti"].xcom_push(key="return_value", value=run.stopped_early_summary(exc))
        except Exception as push_error:
            self.log.warning("Could not push the counts to XCom: %s", type(push_error).__name__)

    def _open_rejects_table(self, context: Context) -> AbstractContextManager[RejectsTable | None]:
        """The rejects table's writer, or nothing when ``rejects_table`` is not set."""
        if self.rejects_table is None:
            return nullcontext()
        hook = self._sql_hook(
            self.rejects_conn_id, f"rejects_conn_id, the database of rejects table {self.rejects_table}"
        )
        stall = self.trackly_hook.settings.longest_request_seconds
        return import_tables.rejects_table(context["ti"], hook, self.rejects_table, stall)

    def _open_ledger(
        self, ledger_table: str | None, context: Context, dry_run: bool
    ) -> AbstractContextManager[ImportLedger | None]:
        """
        The ledger of this import's partition, locked against other imports of it (a dry run, which
        writes nothing, reads it without the lock), or nothing when the import keeps none.
        """
        if ledger_table is None:
            return nullcontext()
        if self.ledger_conn_id == self.sql_conn_id and self.source_hook.conn_type == "sqlite":
            raise import_tables.refuse_ledger_in_sqlite_source(self.sql_conn_id)
        partition = import_partition(
            self.entity.name,
            self.trackly_conn_id,
            self.parameters,
            self.sql,
            self._sql_template,
            self.ledger_partition,
        )
        return import_tables.ledger(
            context["ti"],
            self._sql_hook(
                self.ledger_conn_id, f"ledger_conn_id, the database of ledger table {ledger_table}"
            ),
            ledger_table,
            partition,
            lock_timeout=None if dry_run else self.ledger_lock_timeout,
            max_stall_seconds=self.trackly_hook.settings.longest_request_seconds,
        )

    def get_openlineage_facets_on_start(self) -> OperatorLineage | None:
        """OpenLineage: the tables the query reads and the Trackly endpoint it writes."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage: as on start, with the records imported and the run's counts."""
        return self._lineage(self._run.tally if self._run is not None else None)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage: as on complete, with the counts reached before the failure."""
        return self._lineage(self._run.tally if self._run is not None else None)

    def _lineage(self, tally: ImportTally | None) -> OperatorLineage | None:
        try:
            from trackly_provider.utils.lineage import import_lineage
        except ImportError:  # the optional OpenLineage provider is not installed
            return None
        namespace = self.trackly_hook.settings.lineage_namespace
        return import_lineage(self.source_hook, self.sql, namespace, self.entity, tally)


HistoryImportOperator = BaseHistoryImportOperator
"""The base class's earlier name, kept for DAGs that import or subclass it (new code: the ``Base`` name)."""

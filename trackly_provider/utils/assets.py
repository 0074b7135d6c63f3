"""Airflow Assets for Trackly's import endpoints, and what an import tells about each update."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from airflow.sdk import Asset

from trackly_provider.database.ledger import parameters_json
from trackly_provider.hooks.settings import DEFAULT_BASE_URL, lineage_namespace
from trackly_provider.trackly_api.entities import Entity

if TYPE_CHECKING:  # types only: utils never loads the engine
    from airflow.sdk import Context

    from trackly_provider.operators._engine.tally import ImportTally


def history_asset(entity_name: str, base_url: str = DEFAULT_BASE_URL) -> Asset:
    """``trackly://<host>/history/<entity>``: the dataset the import names in its OpenLineage events."""
    return Asset(f"{lineage_namespace(base_url)}/history/{entity_name}")


def trackly_asset(entity: Entity, base_url: str = DEFAULT_BASE_URL) -> Asset:
    """
    ``trackly://<host>/<Entity.dataset>`` (``.../history/clicks``, ``.../contacts``): the dataset an
    import of ``entity`` names in its OpenLineage events.
    """
    return Asset(f"{lineage_namespace(base_url)}/{entity.dataset}")


def asset_event_extra(entity: Entity, parameters: Any, tally: ImportTally) -> dict[str, Any]:
    """The entity, the partition (the query's parameters: a day's bounds) and the import's counts."""
    partition = orjson.loads(parameters_json(parameters))
    return {"entity": entity.name, "partition": partition, **tally.counts(), **tally.answer_counts}


def annotate_asset_events(context: Context, outlets: Iterable[Any], extra: dict[str, Any]) -> None:
    """Put ``extra`` on the event of every Asset among the task's outlets."""
    for outlet in outlets:
        if isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update(extra)

"""The package is a provider Airflow discovers, asked of real Airflow: its CLI and its connection form."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import AIRFLOW_VERSION
from trackly_provider import __version__


def test_airflow_builds_the_custom_connection_form(airflow_home):
    """What the UI's connection form gets: from the provider info on 3.2+, from the hook before."""
    from airflow.providers_manager import ProvidersManager

    behaviour = ProvidersManager().field_behaviours["trackly"]
    assert behaviour["hidden_fields"] == ["schema", "login"]  # the Port stays: see docs/connection.md
    assert behaviour["relabeling"] == {"password": "API key", "host": "Base URL"}
    assert behaviour["placeholders"]["host"] == "https://app.tracklysms.com"
    assert behaviour["placeholders"]["password"] == "trk_ followed by 32 letters or digits"


def test_airflow_lists_the_provider_and_its_connection_type(airflow_home):
    airflow = str(Path(sys.executable).parent / "airflow")
    providers = json.loads(
        subprocess.run(
            [airflow, "providers", "list", "-o", "json"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert {"package_name": "airflow-provider-trackly", "version": __version__} in [
        {"package_name": p["package_name"], "version": p["version"]} for p in providers
    ]
    hooks = json.loads(
        subprocess.run(
            [airflow, "providers", "hooks", "-o", "json"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert any(
        h["connection_type"] == "trackly" and h["class"] == "trackly_provider.hooks.trackly.TracklyHook"
        for h in hooks
    )


def test_airflow_reads_every_extra_as_a_form_field_and_the_documentation_url(airflow_home):
    """Airflow 3.2+ reads conn-fields from the provider info; 3.0 and 3.1 the hook's wtforms widgets."""
    from airflow.providers_manager import ProvidersManager

    from trackly_provider.get_provider_info import CONN_FIELDS, DOCUMENTATION_URL

    manager = ProvidersManager()
    widgets = {
        name.removeprefix("extra__trackly__")
        for name in manager.connection_form_widgets
        if name.startswith("extra__trackly__")
    }
    assert widgets == set(CONN_FIELDS)
    assert manager.providers["airflow-provider-trackly"].data["documentation-url"] == DOCUMENTATION_URL


class _Everyone:
    """An auth manager that lets the caller read every connection (the admin pressing Test)."""

    def is_authorized_connection(self, **_: object) -> bool:
        return True


def _press_test(conn_id: str, stored: dict, monkeypatch: pytest.MonkeyPatch):
    """
    Airflow's own POST /api/v2/connections/test route, called with the body the connections list's
    Test button sends for a stored connection (Airflow 3.1 to 3.3: ``port: Number(port)``, so 0 for
    none, and the masked password ``***``).
    """
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionBody
    from airflow.api_fastapi.core_api.routes.public import connections

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "trackly", **stored}))
    body = ConnectionBody.model_validate(
        {
            "connection_id": conn_id,
            "conn_type": "trackly",
            "description": "",
            "extra": "{}",
            "host": stored.get("host") or "",
            "login": "",
            "password": "***",
            "port": stored.get("port") or 0,
            "schema": "",
        }
    )
    route = connections.test_connection
    if "auth_manager" in inspect.signature(route).parameters:  # 3.3: checks access to the stored one
        return route(body, user=None, auth_manager=_Everyone())
    return route(body)


@pytest.mark.skipif(AIRFLOW_VERSION < (3, 1), reason="Airflow 3.0's UI has no Test button")
def test_the_test_button_body_works_with_the_port_typed(airflow_home, sandbox, monkeypatch):
    port = urlsplit(sandbox.url).port
    stored = {"host": sandbox.url, "port": port, "password": sandbox.api_key}
    answer = _press_test("trackly_form_port", stored, monkeypatch)
    assert (answer.status, answer.message) == (
        True,
        f"Connected to Trackly at {sandbox.url}: the API key works.",
    )


@pytest.mark.skipif(AIRFLOW_VERSION < (3, 1), reason="Airflow 3.0's UI has no Test button")
def test_the_test_button_body_with_port_empty_is_refused_by_airflow_3_3_2_only(
    airflow_home, sandbox, monkeypatch
):
    """The UI sends port 0 for an empty Port; 3.3.2's API compares it with the stored None."""
    from airflow.api_fastapi.core_api.routes.public import connections
    from fastapi import HTTPException

    stored = {"host": sandbox.url, "port": None, "password": sandbox.api_key}
    same_endpoint = getattr(connections, "_same_endpoint", None)
    if same_endpoint is not None and not same_endpoint(0, None):
        with pytest.raises(HTTPException) as refused:
            _press_test("trackly_form_no_port", stored, monkeypatch)
        assert (refused.value.status_code, refused.value.detail) == (
            400,
            "The host or port to test differs from the stored connection. Include the credentials to "
            "test in the request body.",
        )
    else:  # 3.1 and 3.2 merge the body into the stored connection: port 0 means none here
        answer = _press_test("trackly_form_no_port", stored, monkeypatch)
        assert (answer.status, answer.message) == (
            True,
            f"Connected to Trackly at {sandbox.url}: the API key works.",
        )

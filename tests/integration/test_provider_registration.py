"""The package is a provider Airflow discovers, asked of real Airflow: its CLI and its connection form."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from trackly_provider import __version__


def test_airflow_builds_the_custom_connection_form(airflow_home):
    """What the UI's connection form gets: from the provider info on 3.2+, from the hook before."""
    from airflow.providers_manager import ProvidersManager

    behaviour = ProvidersManager().field_behaviours["trackly"]
    assert behaviour["hidden_fields"] == ["schema", "login"]
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

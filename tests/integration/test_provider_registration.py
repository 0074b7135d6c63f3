"""The package is a provider Airflow discovers: entry point, connection type, hook and operator."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from trackly_provider import __version__


def test_entry_point_points_at_get_provider_info():
    (entry,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("trackly_provider")
    ]
    info = entry.load()()
    assert info["package-name"] == "airflow-provider-trackly"
    assert info["versions"] == [__version__]
    (connection_type,) = info["connection-types"]
    assert connection_type["hook-class-name"] == "trackly_provider.hooks.trackly.TracklyHook"
    assert connection_type["connection-type"] == "trackly"


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


def test_the_hook_gives_airflow_3_0_and_3_1_the_form_the_provider_info_gives_later_releases():
    """Airflow before 3.2 asks the hook; 3.2+ reads the provider info. Users must see one form."""
    from trackly_provider.get_provider_info import get_provider_info
    from trackly_provider.hooks.trackly import TracklyHook

    (connection_type,) = get_provider_info()["connection-types"]
    declared = connection_type["ui-field-behaviour"]
    assert TracklyHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }

"""The provider info Airflow discovers: entry point, connection type and its form (get_provider_info.py)."""

from __future__ import annotations

from importlib.metadata import entry_points

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

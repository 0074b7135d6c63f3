"""The provider info Airflow discovers: entry point, connection type and its form (get_provider_info.py)."""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points

import pytest

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


def test_every_extra_the_hook_reads_is_a_typed_field_of_the_form():
    from trackly_provider.get_provider_info import CONN_FIELDS
    from trackly_provider.hooks.settings import KNOWN_EXTRAS

    assert sorted(CONN_FIELDS) == sorted(KNOWN_EXTRAS)
    types = {name: field["schema"]["type"] for name, field in CONN_FIELDS.items()}
    assert {name for name, kind in types.items() if kind == ["number", "null"]} == {
        "connect_timeout",
        "read_timeout",
        "request_timeout",
        "backoff_base",
        "backoff_max",
        "retry_after_max",
    }
    assert {name for name, kind in types.items() if kind == ["integer", "null"]} == {
        "max_attempts",
        "max_response_bytes",
    }


def test_the_defaults_the_form_names_are_the_hooks():
    """Each field's description ends with its default; the extra's placeholder holds the same values."""
    from trackly_provider.get_provider_info import CONN_FIELDS, EXTRA_DEFAULTS, UI_FIELD_BEHAVIOUR
    from trackly_provider.hooks.settings import parse_settings

    settings = parse_settings("c", host=None, port=None, password="trk_" + "a" * 32, extras={})
    hook_defaults = {
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "request_timeout": settings.request_timeout,
        "max_attempts": settings.retry.max_attempts,
        "backoff_base": settings.retry.backoff_base,
        "backoff_max": settings.retry.backoff_max,
        "retry_after_max": settings.retry.retry_after_max,
        "max_response_bytes": settings.max_response_bytes,
        "verify": settings.verify,
    }
    assert hook_defaults == EXTRA_DEFAULTS
    assert json.loads(UI_FIELD_BEHAVIOUR["placeholders"]["extra"]) == hook_defaults
    for name, default in hook_defaults.items():
        shown = "true, with the usual CAs" if default is True else f"{default:.15g}"
        assert f"Empty: {shown}" in CONN_FIELDS[name]["description"], name
    for name in ("client_cert", "client_key"):
        assert CONN_FIELDS[name]["description"].endswith("Empty: none.")


def test_the_port_stays_in_the_form_for_the_test_button_of_airflow_3_3():
    from trackly_provider.get_provider_info import UI_FIELD_BEHAVIOUR

    assert "port" not in UI_FIELD_BEHAVIOUR["hidden-fields"]
    assert UI_FIELD_BEHAVIOUR["placeholders"]["port"] == "443, or the port in the Base URL"


def test_the_providers_page_links_the_documentation_url_of_the_package_metadata():
    """Airflow 3.1+ takes the link from the Project-URL 'Documentation'; the provider info says the same."""
    from importlib.metadata import metadata

    from trackly_provider.get_provider_info import DOCUMENTATION_URL, get_provider_info

    urls = dict(entry.split(", ", 1) for entry in metadata("airflow-provider-trackly").get_all("Project-URL"))
    assert urls["Documentation"] == DOCUMENTATION_URL == get_provider_info()["documentation-url"]


class _Field:
    """What Airflow 3.0 and 3.1 put in place of wtforms' fields when they build the form's JSON."""

    def __init__(self, label, validators=None, description="", default=None, widget=None):
        self.label, self.validators, self.description, self.default = label, validators, description, default
        self.field_class = type(self)


class _StringField(_Field):
    pass


class _IntegerField(_Field):
    pass


def test_airflow_3_0_and_3_1_get_the_same_fields_from_the_hook(monkeypatch):
    import types

    from trackly_provider.get_provider_info import CONN_FIELDS
    from trackly_provider.hooks.trackly import TracklyHook

    wtforms = types.ModuleType("wtforms")
    wtforms.StringField, wtforms.IntegerField = _StringField, _IntegerField
    validators = types.ModuleType("wtforms.validators")
    validators.Optional = lambda: "optional"
    monkeypatch.setitem(sys.modules, "wtforms", wtforms)
    monkeypatch.setitem(sys.modules, "wtforms.validators", validators)

    widgets = TracklyHook.get_connection_form_widgets()
    assert list(widgets) == list(CONN_FIELDS)
    for name, field in CONN_FIELDS.items():
        widget = widgets[name]
        assert (widget.label, widget.description) == (field["label"], field["description"])
        assert (widget.validators, widget.default) == (["optional"], None)
        expected = _IntegerField if field["schema"]["type"] == ["integer", "null"] else _StringField
        assert widget.field_class is expected, name


def test_without_wtforms_the_hook_raises_what_airflow_3_0_expects(monkeypatch):
    """3.0 and 3.1 then show the form without the extra fields (an ImportError named 'wtforms')."""
    from trackly_provider.hooks.trackly import TracklyHook

    monkeypatch.setitem(sys.modules, "wtforms", None)
    with pytest.raises(ImportError) as raised:
        TracklyHook.get_connection_form_widgets()
    assert raised.value.name == "wtforms"

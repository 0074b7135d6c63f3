"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

import json
from typing import Any

from trackly_provider import __version__

# The connection form. Airflow 3.2+ reads it from here without importing the hook; 3.0 and 3.1 ask
# the hook's get_ui_field_behaviour(), which returns the same form.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login"],
    "relabeling": {"password": "API key", "host": "Base URL"},
    "placeholders": {
        "host": "https://app.tracklysms.com",
        "password": "trk_ followed by 32 letters or digits",
        "extra": json.dumps({"connect_timeout": 10, "read_timeout": 60, "max_attempts": 5}),
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its connection type, hook and operators."""
    return {
        "package-name": "airflow-provider-trackly",
        "name": "Trackly SMS",
        "description": (
            "Import contacts and SMS history (sends, clicks, revenue) from any SQL database into Trackly SMS."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Trackly SMS",
                "external-doc-url": "https://app.tracklysms.com",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Trackly SMS", "python-modules": ["trackly_provider.hooks.trackly"]}],
        "operators": [
            {
                "integration-name": "Trackly SMS",
                "python-modules": [
                    "trackly_provider.operators.history_import",
                    "trackly_provider.operators.contact_import",
                    "trackly_provider.operators.send_history",
                    "trackly_provider.operators.click_history",
                    "trackly_provider.operators.revenue_history",
                ],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "trackly_provider.hooks.trackly.TracklyHook",
                "hook-name": "Trackly SMS",
                "connection-type": "trackly",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }

"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from trackly_provider import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its connection type, hook and operator."""
    return {
        "package-name": "airflow-provider-trackly",
        "name": "Trackly SMS",
        "description": "Import historical SMS click records from any SQL database into Trackly SMS.",
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
                "python-modules": ["trackly_provider.operators.click_history"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "trackly_provider.hooks.trackly.TracklyHook",
                "hook-name": "Trackly SMS",
                "connection-type": "trackly",
            }
        ],
    }

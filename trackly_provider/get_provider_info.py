"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

import json
from typing import Any

from trackly_provider import __version__

# Where the Providers page of Airflow 3.1+ links the package name. Airflow takes it from the
# distribution's Project-URL "Documentation" (pyproject.toml's [project.urls]) and overwrites the
# provider info's key with it; the key here is for tools that read the provider info alone.
DOCUMENTATION_URL = "https://app.tracklysms.com"

# The connection's extras as typed form fields, in the form's order. Airflow 3.2+ reads them from
# here ("conn-fields", each value stored in the extra under its name); 3.0 and 3.1 build the same
# fields from the hook's get_connection_form_widgets(). No field has a stored default: an empty
# field leaves the extra out or null, and the hook applies the default its description names
# (hooks/settings.py holds the defaults; test_get_provider_info checks they agree).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "description": "Seconds to open a connection, TCP and TLS. Empty: 10.",
        "schema": {"type": ["number", "null"]},
    },
    "read_timeout": {
        "label": "Read timeout (seconds)",
        "description": "Seconds of silence allowed between two reads of an answer. Empty: 60.",
        "schema": {"type": ["number", "null"]},
    },
    "request_timeout": {
        "label": "Request deadline (seconds)",
        "description": "Seconds one attempt may take in all: connect, send and receive. Empty: 120.",
        "schema": {"type": ["number", "null"]},
    },
    "max_attempts": {
        "label": "Attempts per request",
        "description": "Attempts per request, the first included (1: never retry). Empty: 5.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "backoff_base": {
        "label": "Backoff base (seconds)",
        "description": "The wait before retry n is at most backoff base x 2^(n-1) seconds, jittered. "
        "Empty: 1.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "backoff_max": {
        "label": "Longest backoff (seconds)",
        "description": "No wait between two attempts is longer than this. Empty: 60.",
        "schema": {"type": ["number", "null"]},
    },
    "retry_after_max": {
        "label": "Longest Retry-After honoured (seconds)",
        "description": "A Retry-After asking for longer fails the task saying so. Empty: 300.",
        "schema": {"type": ["number", "null"]},
    },
    "max_response_bytes": {
        "label": "Largest answer read (bytes)",
        "description": "Bytes of an answer read, after decompression; a larger answer fails that request. "
        "Empty: 1048576 (1 MiB).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "verify": {
        "label": "TLS verification",
        "description": "true, false (off: anyone on the way can read the key), or the path of a PEM CA "
        "bundle file or directory to trust. Empty: true, with the usual CAs.",
        "schema": {"type": ["string", "null"]},
    },
    "client_cert": {
        "label": "Client certificate (PEM file path)",
        "description": "For a gateway that asks for one (mutual TLS); may hold the key too. Empty: none.",
        "schema": {"type": ["string", "null"]},
    },
    "client_key": {
        "label": "Client key (PEM file path)",
        "description": "The client certificate's key, when it is in a file of its own; no passphrase. "
        "Empty: none.",
        "schema": {"type": ["string", "null"]},
    },
    "proxy": {
        "label": "Proxy URL",
        "description": "http://[user:password@]host:port, used for every request. Empty: the environment's "
        "HTTPS_PROXY and NO_PROXY.",
        "schema": {"type": ["string", "null"]},
    },
}

# What an extra holds when nothing is set, shown as the "Extra Fields JSON" placeholder.
EXTRA_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10,
    "read_timeout": 60,
    "request_timeout": 120,
    "max_attempts": 5,
    "backoff_base": 1,
    "backoff_max": 60,
    "retry_after_max": 300,
    "max_response_bytes": 1_048_576,
    "verify": True,
}

# The connection form. Airflow 3.2+ reads it from here without importing the hook; 3.0 and 3.1 ask
# the hook's get_ui_field_behaviour(), which returns the same form. The Port stays visible: Airflow
# 3.3.2's Test button sends the stored port, and an empty one as 0, which its API refuses as "differs
# from the stored connection" (docs/connection.md, What the Test button checks).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login"],
    "relabeling": {"password": "API key", "host": "Base URL"},
    "placeholders": {
        "host": "https://app.tracklysms.com",
        "password": "trk_ followed by 32 letters or digits",
        "port": "443, or the port in the Base URL",
        "extra": json.dumps(EXTRA_DEFAULTS),
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its connection type (with its form), hook and operators."""
    return {
        "package-name": "airflow-provider-trackly",
        "name": "Trackly SMS",
        "description": (
            "Import contacts and SMS history (sends, clicks, revenue) from any SQL database into Trackly SMS."
        ),
        "versions": [__version__],
        "documentation-url": DOCUMENTATION_URL,
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
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }

"""A local Trackly-compatible server for demos, tests and trying a DAG without a real key."""

SANDBOX_API_KEY = "trk_sandboxDemoKey000000000000000000"
UNKNOWN_ID_PREFIX = "unknown"
CONTACTLESS_ID_PREFIX = "nocontact"  # a message whose contact was deleted: its revenue is contact_not_found

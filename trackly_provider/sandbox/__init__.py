"""A local Trackly-compatible server for demos, tests and trying a DAG without a real key."""

SANDBOX_API_KEY = "trk_sandboxDemoKey000000000000000000"
UNKNOWN_ID_PREFIX = "unknown"

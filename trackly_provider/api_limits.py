"""The Trackly API's documented limits, shared by the client and the sandbox (no Airflow needed)."""

MAX_RECORDS_PER_REQUEST = 1000

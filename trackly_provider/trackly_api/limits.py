"""The Trackly API's documented limits, shared by the client and the sandbox (no Airflow needed)."""

MAX_RECORDS_PER_REQUEST = 1000
MAX_ERRORS_LISTED = 100  # errors an answer lists, whatever its error_count
MAX_BODY_BYTES = 5_000_000  # "at most 5 MB per request body; more gives 413" (trackly-api.md, Limits)
# Our code for one record bigger than a request body may be: the API answers a whole-request 413.
RECORD_TOO_LARGE = "record_too_large"

"""The provider's exceptions: what went wrong, never the API key or a record's personal data."""

from __future__ import annotations

from trackly_provider.version_compat import AirflowException, AirflowFailException


class TracklyError(AirflowException):
    """Base class of every error raised by this provider."""


class TracklyConfigError(TracklyError, AirflowFailException):
    """A connection or argument is wrong; retrying the task cannot fix it."""


class TracklyApiError(TracklyError):
    """The Trackly API answered with an error status."""

    def __init__(self, status: int, code: str | None, error: str, *, context: str = "") -> None:
        self.status = status
        self.code = code
        self.error = error
        detail = f"HTTP {status}" + (f" {code}" if code else "") + f": {error}"
        super().__init__(f"{context}: {detail}" if context else f"Trackly API error, {detail}")


class TracklyAuthError(TracklyApiError, AirflowFailException):
    """The API key was rejected (401) or the account is suspended (403); no retry can fix it."""


class TracklyEndpointNotFoundError(TracklyApiError, AirflowFailException):
    """
    Trackly answered 404 for one of its own endpoints: the Base URL is wrong (a path Trackly does
    not serve, or a gateway path missing); no retry can fix it. No endpoint of the API page answers
    404 for a record.
    """


class TracklyBillingError(TracklyApiError, AirflowFailException):
    """Trackly refused a whole request for billing (402: paid validation without a payment method)."""


class TracklyTransientError(TracklyError):
    """A request failed in a way that retrying may fix (network fault, 429, 5xx)."""


class TracklyRetriesExhaustedError(TracklyTransientError):
    """A transient failure persisted through every allowed attempt."""


class TracklyOutcomeUnknownError(TracklyError):
    """A request for records Trackly does not deduplicate may or may not have been applied."""


class TracklyUnconfirmedRecordsError(TracklyError, AirflowFailException):
    """Some records' import is unknown (no answer); they are not sent again until the user decides."""


class TracklyPartitionLockedError(TracklyError, AirflowFailException):
    """Another import of the same ledger partition held it past ``ledger_lock_timeout``; nothing was sent."""


class TracklyResponseError(TracklyError):
    """The API answered 200 with a body that cannot be trusted (malformed, or counts that do not add up)."""


class TracklySourceError(TracklyError, AirflowFailException):
    """A SQL connection (the source or the rejects table's) is unusable, or the query lacks columns."""


class TracklyMissingSourceObjectError(TracklySourceError):
    """
    The query names a table or column the source database does not have; no retry can fix it.

    ``kind``: ``"table"`` or ``"column"``; ``name``: the name as the driver reported it (phone
    numbers redacted), or None when its text named none.
    """

    def __init__(self, message: str, kind: str, name: str | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class TracklyErrorRateExceededError(TracklyError, AirflowFailException):
    """More rows were rejected than ``max_error_rate`` allows; a retry would reject them again."""


class TracklyUnrequestedEffectError(TracklyError, AirflowFailException):
    """
    Trackly did what the import did not ask for (contacts enrolled in journeys); it stopped at once.

    ``count_name``: the answer's count (``journeys_enrolled``); ``shown``: its value as text;
    ``result``: the answer's ``ImportResult`` when it could be read, to count what Trackly did.
    """

    def __init__(self, message: str, count_name: str = "", shown: str = "", result: object = None) -> None:
        super().__init__(message)
        self.count_name = count_name
        self.shown = shown
        self.result = result

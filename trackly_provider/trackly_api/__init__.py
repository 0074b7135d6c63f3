"""The Trackly API's contract: its limits, entities, answers, request bodies, value formats, redaction.

Pure code with no Airflow, database or network. Every other layer builds on it, and the local
sandbox (``trackly_provider.sandbox``) imports from this package alone, so the sandbox and the
provider cannot disagree on the contract (``../shared/trackly-api.md``).
"""

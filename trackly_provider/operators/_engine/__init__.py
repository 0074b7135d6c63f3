"""The import engine behind every history operator (private: no name here is a public API).

An ``ImportRun`` (``import_run.py``) reads the source, builds records, skips those the ledger holds
as confirmed, batches, sends, settles the answers, resends ``save_error`` records and finishes with
the summary. The operators create one and hand it the hooks.
"""

"""The import engine behind every history operator (private: no name here is a public API).

An ``ImportRun`` reads the source, builds records, screens them by the ledger, batches, sends,
settles the answers and finishes with the summary. The operators create one and hand it the hooks.
"""

"""The user's database: the SQL source that is read, and the tables the import writes (ledger, rejects).

Reaches databases only through Airflow's ``DbApiHook``; knows nothing of HTTP or of Trackly's answers.
"""

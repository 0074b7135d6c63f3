"""Public helpers for DAGs: daily partitions, the trigger form's range params, Assets, lineage.

The example DAGs import from here, ``trackly_provider.operators`` and ``trackly_provider.hooks``
only; these names are public and documented in ``docs/``.
"""

"""How a recipe runs: fingerprints, the shard cache, ingestion, shard work and finalisation.

Executors (``gristmill.executors``) only schedule the functions in ``worker``; all state
lives in files under the run directory, so any executor can run them.
"""

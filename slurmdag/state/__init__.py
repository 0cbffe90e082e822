"""The per-user state on disk: DAG records, locks, attempt history."""

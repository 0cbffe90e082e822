"""Services over one DAG: submit, status, cancel, reconcile, resume/redo."""

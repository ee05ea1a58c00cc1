"""Lightning callbacks used by the training task."""

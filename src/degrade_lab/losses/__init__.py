"""Loss terms shared by models (KL divergences, ...)."""

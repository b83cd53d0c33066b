"""sender package (the link issue fills it in)."""

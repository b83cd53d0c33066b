"""channel_proxy package (the link issue fills it in)."""

"""`xl top`: the live dashboard."""

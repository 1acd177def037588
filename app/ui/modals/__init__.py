"""Modal screens: forms and confirmations."""

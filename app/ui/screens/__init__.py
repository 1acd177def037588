"""Full screens pushed over the console: the campaign wizard."""

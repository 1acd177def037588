"""Where the store and the user's own files live, decided without the data layer.

Kept apart from ``store`` (which imports SQLAlchemy) so the console can name
and glance at the default store before SQLAlchemy is loaded.
"""

import os
from pathlib import Path

from platformdirs import user_data_path

ENV_DB = "SUBGROUPS_DB"


def data_dir() -> Path:
    """The user data directory (XDG: ``$XDG_DATA_HOME/subgroups``)."""
    return user_data_path("subgroups", appauthor=False)


def default_db_path() -> Path:
    """Where the store lives when no --db and no SUBGROUPS_DB is given."""
    return data_dir() / "subgroups.db"


def db_text(db: str | os.PathLike[str] | None) -> str:
    """The --db value as given, else ``SUBGROUPS_DB``, else the default store's path."""
    if db is None or str(db) == "":
        return os.environ.get(ENV_DB) or str(default_db_path())
    return str(db)

"""Profile CSV files: import (read, plan, write) and export (DESIGN.md §2).

The format is described in ``format``. An import runs in three steps, so
the console can show a preview first:

1. ``read_csv`` (``reading``) checks the whole file against the groups and
   collects every problem (file, line, column) before giving up: a bad
   file raises ``CsvError`` and nothing is written.
2. ``plan_import`` (``planning``) compares the rows with the store: new
   profiles, changed fields, and every state change with the stored state
   it replaces. An explicit stored ``unsubscribed`` never becomes
   ``subscribed`` unless the import overwrites unsubscribes, with a reason;
   by default such cells are listed as kept unsubscribed and left alone.
3. ``apply_import`` (``writing``) plans again inside one write transaction,
   refuses if the store changed since the preview (or the file did:
   ``fingerprint``; the file itself is not read again), and writes everything
   with one ledger event per state change (Source ``import``).

``import_profiles`` runs all three (a dry run stops after the plan);
``export_profiles`` (``exporting``) writes a file that imports back
unchanged. At 200k rows the ORM's and SQLAlchemy's per-row work would cost
more than the database's (``bench/bench_import.py``), so writes go through
``app.core.bulk`` (executemany on SQLite, COPY on PostgreSQL) and lookups
through the DBAPI cursor.

This package is the public import point: ``from app.core import csv_io``.
"""

from app.core.csv_io.columns import (
    EMAIL_MAX,
    IDENTITY_MAX,
    NAME_MAX,
    STATE_HELP,
    ParsedRow,
    valid_email,
)
from app.core.csv_io.exporting import export_profiles
from app.core.csv_io.format import (
    ALL_EMAIL,
    EMAIL,
    FIXED_COLUMNS,
    GROUP_PREFIX,
    IDENTITY,
    NAME,
    Cancel,
    Progress,
    Source,
    property_text,
)
from app.core.csv_io.planning import (
    FieldChange,
    ImportPlan,
    KeptUnsubscribed,
    NewProfile,
    PlannedChange,
    ProfileUpdate,
    clean_overwrite,
    plan_import,
)
from app.core.csv_io.problems import SHOWN_PROBLEMS, CsvError, CsvProblem
from app.core.csv_io.reading import KEPT_PROBLEMS, MAX_ROW_CHARS, ParsedCsv, read_csv
from app.core.csv_io.writing import SOURCE, ImportResult, apply_import, import_profiles
from app.core.errors import ImportCancelled, ImportFileChanged, ImportOutdated
from app.core.ledger import PROFILES_IMPORTED

__all__ = [
    "ALL_EMAIL",
    "EMAIL",
    "EMAIL_MAX",
    "FIXED_COLUMNS",
    "GROUP_PREFIX",
    "IDENTITY",
    "IDENTITY_MAX",
    "KEPT_PROBLEMS",
    "MAX_ROW_CHARS",
    "NAME",
    "NAME_MAX",
    "PROFILES_IMPORTED",
    "SHOWN_PROBLEMS",
    "SOURCE",
    "STATE_HELP",
    "Cancel",
    "CsvError",
    "CsvProblem",
    "FieldChange",
    "ImportCancelled",
    "ImportFileChanged",
    "ImportOutdated",
    "ImportPlan",
    "ImportResult",
    "KeptUnsubscribed",
    "NewProfile",
    "ParsedCsv",
    "ParsedRow",
    "PlannedChange",
    "ProfileUpdate",
    "Progress",
    "Source",
    "apply_import",
    "clean_overwrite",
    "export_profiles",
    "import_profiles",
    "plan_import",
    "property_text",
    "read_csv",
    "valid_email",
]

"""Typed errors the services raise; the CLI maps them to exit codes.

``RuleRefused`` (exit 1): the input was well formed but a rule said no
(limit reached, name taken, unknown group). ``InvalidInput`` (exit 2): the
input itself is wrong (blank name, name too long, bad --db, a bad CSV file).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from app.core import visible

SHOWN_PROBLEMS = 5  # of a bad CSV file, in the error's message


class SubgroupsError(Exception):
    """Base of every error a user is meant to read."""

    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The form field or CLI option the message is about, when there is one.
        self.field = field

    def __str__(self) -> str:
        return self.message


class RuleRefused(SubgroupsError):
    """A rule of the product refused the action."""

    exit_code = 1


class InvalidInput(SubgroupsError):
    """The input is malformed: blank, too long, of the wrong kind."""

    exit_code = 2


class StoreUnavailable(SubgroupsError):
    """The --db given cannot be opened as a store."""

    exit_code = 2


class GroupLimitReached(RuleRefused):
    """Creating or unarchiving would make more than the maximum active groups."""


class NameTaken(RuleRefused):
    """Another group (archived ones included) already has this name."""


class UnknownGroup(RuleRefused):
    """No group has this name or id."""


class UnknownProfile(RuleRefused):
    """No profile has this identity."""


class WrongStatus(RuleRefused):
    """The action does not apply in the group's current status."""


class OtherDestination(WrongStatus):
    """A campaign's send is resumed into another outbox than the one it first delivered to."""


# --- profile CSV files (app.core.csv_io) ------------------------------------------


@dataclass(frozen=True)
class CsvProblem:
    """One thing wrong with a CSV file, and where (line and column are 1-based)."""

    file: str
    line: int | None
    column: str | None
    column_number: int | None
    message: str

    @property
    def where(self) -> str:
        parts = [f"line {self.line}"] if self.line else []
        if self.column_number:
            parts.append(f"column {self.column_number}")
        text = ", ".join(parts)
        if self.column:
            # A column name is the file's text: a control character in it is shown escaped.
            column = visible.shown(self.column)
            text += f" ({column})" if text else f"column {column}"
        return text

    def __str__(self) -> str:
        return (
            f"{self.file}, {self.where}: {self.message}"
            if self.where
            else f"{self.file}: {self.message}"
        )


class CsvError(InvalidInput):
    """The file is not a valid profile CSV: ``problems`` (the first few hundred) and ``total``."""

    def __init__(self, problems: Sequence[CsvProblem], *, total: int = 0) -> None:
        self.problems = list(problems)
        self.total = max(total, len(self.problems))
        first = self.problems[0]
        if self.total == 1:
            message = f"{first}; nothing was imported"
        else:
            lines = [f"{first.file}: {self.total:,} problems; nothing was imported"]
            lines += [f"  {p.where}: {p.message}" for p in self.problems[:SHOWN_PROBLEMS]]
            if self.total > SHOWN_PROBLEMS:
                lines.append(f"  and {self.total - SHOWN_PROBLEMS:,} more")
            message = "\n".join(lines)
        super().__init__(message, field="file")


class ImportOutdated(RuleRefused):
    """The store changed between the preview and the import; nothing was written."""


class ImportCancelled(SubgroupsError):
    """The user stopped the import; nothing was written."""

"""What is wrong with a profile CSV file: each problem with its place, and the error.

A bad file raises ``CsvError`` (an ``InvalidInput``) listing its problems;
nothing is imported.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from app.core.errors import InvalidInput
from app.core.text_rules import shown

SHOWN_PROBLEMS = 5  # of a bad CSV file, in the error's message


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
            column = shown(self.column)
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

"""Typed errors the services raise; the CLI maps them to exit codes.

``RuleRefused`` (exit 1): the input was well formed but a rule said no
(limit reached, name taken, unknown group). ``InvalidInput`` (exit 2): the
input itself is wrong (blank name, name too long, bad --db, a bad CSV file).
"""


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


class SendInProgress(WrongStatus):
    """Another live process is sending the campaign (SQLite: one sender at a time).

    ``holder`` names it (``host:pid``); ``campaigns send`` says so and exits 0.
    """

    def __init__(self, message: str, *, holder: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.holder = holder


class OtherDestination(WrongStatus):
    """A campaign's send is resumed into another outbox than the one it first delivered to."""


# --- profile CSV files (app.core.csv_io) ------------------------------------------


class ImportOutdated(RuleRefused):
    """The store changed between the preview and the import; nothing was written."""


class ImportFileChanged(ImportOutdated):
    """The file changed (or went) between the preview and the import; nothing was written."""


class ImportCancelled(SubgroupsError):
    """The user stopped the import; nothing was written."""


# --- admins and roles (app.core.actors, app.core.admins) ---------------------------


class RoleRefused(RuleRefused):
    """The acting person's role does not allow the action; nothing was written."""


class UnknownAdmin(RuleRefused):
    """No admin has this name."""

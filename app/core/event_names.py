"""The ledger's event names and change sources: plain constants, importable without
the data layer (the console's log pane names them before the store is open)."""

CHANNEL_UNSUBSCRIBED = "Channel Unsubscribed"
GROUP_CREATED = "Group Created"
GROUP_UPDATED = "Group Updated"
GROUP_ARCHIVED = "Group Archived"
GROUP_UNARCHIVED = "Group Unarchived"
SAMPLE_DATA_LOADED = "Sample Data Loaded"
PROFILES_IMPORTED = "Profiles Imported"
LANDING_PAGE_UPDATED = "Landing Page Updated"
EMAIL_BOUNCED = "Email Bounced"
SETTINGS_CHANGED = "Settings Changed"

ADMIN_ADDED = "Admin Added"
ADMIN_REMOVED = "Admin Removed"
ADMIN_ROLE_CHANGED = "Admin Role Changed"
ADMIN_SESSION_STARTED = "Admin Session Started"
ADMIN_SESSION_ENDED = "Admin Session Ended"

UNSUBSCRIBE_REASON = "Unsubscribe Reason"

SOURCES = (
    "landing_page",
    "one_click",
    "console",
    "cli",
    "import",
    "simulator",
    "ssh",
    # Inbound mail (``subgroups inbound``): a mailto: unsubscribe, a bounce, a complaint.
    "mailto",
    "bounce",
    "complaint",
)

PROFILE_ERASED = "Profile Erased"

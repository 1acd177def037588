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
    # Issue 12: opt-outs that come back by mail (the demo's month of history tells them too).
    "mailto",
    "complaint",
    "bounce",
)

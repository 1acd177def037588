"""The console's style sheets (styles/), one per section or area, in the order they apply."""

STYLE_SHEETS = (
    "app.tcss",
    "groups.tcss",
    "profiles.tcss",
    "segments.tcss",
    "campaigns.tcss",
    "landing.tcss",
    "insights.tcss",
    "event_log.tcss",
    "modals.tcss",
)

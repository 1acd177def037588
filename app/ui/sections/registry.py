"""The six sections by key, in the order of their number keys (1-6) and of the
section bar (the app, the help screen and the palette read it).

An entry names its section's module and class rather than importing them: a
section's module (and what it imports: the data layer, its dialogs) is loaded
when the section is first shown. The titles and keys are here, so the section
bar, help and the palette need no section module.
"""

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.binding import BindingType

from app.ui.sections import keys

if TYPE_CHECKING:
    from app.ui.sections.base import Section


@dataclass(frozen=True)
class SectionEntry:
    """One section: its title, its keys and where its widget class lives."""

    key: str
    title: str
    bindings: list[BindingType]
    module: str
    class_name: str

    def load(self) -> "type[Section]":
        """The section's widget class (imports its module the first time)."""
        section_class: type[Section] = getattr(
            importlib.import_module(self.module), self.class_name
        )
        return section_class


SECTIONS: dict[str, SectionEntry] = {
    entry.key: entry
    for entry in (
        SectionEntry("groups", "Groups", keys.GROUPS, "app.ui.sections.groups", "GroupsSection"),
        SectionEntry(
            "profiles", "Profiles", keys.PROFILES, "app.ui.sections.profiles", "ProfilesSection"
        ),
        SectionEntry(
            "segments", "Segments", keys.SEGMENTS, "app.ui.sections.segments", "SegmentsSection"
        ),
        SectionEntry(
            "campaigns",
            "Campaigns",
            keys.CAMPAIGNS,
            "app.ui.sections.campaigns",
            "CampaignsSection",
        ),
        SectionEntry(
            "landing", "Landing page", keys.LANDING, "app.ui.sections.landing", "LandingSection"
        ),
        SectionEntry(
            "insights", "Insights", keys.INSIGHTS, "app.ui.sections.insights", "InsightsSection"
        ),
    )
}

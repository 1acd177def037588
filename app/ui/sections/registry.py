"""The five sections by key, in the order of their number keys (1-5) and of the
section bar (the app, the help screen and the palette read it)."""

from app.ui.sections.base import Section
from app.ui.sections.campaigns import CampaignsSection
from app.ui.sections.groups import GroupsSection
from app.ui.sections.landing import LandingSection
from app.ui.sections.profiles import ProfilesSection
from app.ui.sections.segments import SegmentsSection

SECTIONS: dict[str, type[Section]] = {
    "groups": GroupsSection,
    "profiles": ProfilesSection,
    "segments": SegmentsSection,
    "campaigns": CampaignsSection,
    "landing": LandingSection,
}

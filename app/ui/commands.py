"""Command palette (ctrl+p): every section and every action, found by name.

The entries are read from the same bindings the footer and the help screen
show, so the three never disagree. Choosing one posts a message; the app
switches to the section and runs the action there. Opened over the campaign
wizard, the palette offers the wizard's own actions instead (the sections
are behind it).
"""

import sys
from collections.abc import Iterator
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from app.ui.messages import RunSectionAction
from app.ui.screens.wizard_keys import WIZARD as WIZARD_KEYS
from app.ui.sections.registry import SECTIONS

# The "section" of entries that run on the open campaign wizard.
WIZARD = "campaign wizard"


def is_wizard(screen: object) -> bool:
    """The screen is the campaign wizard (not imported until first opened, so
    a screen cannot be one while its module is not loaded)."""
    module = sys.modules.get("app.ui.screens.campaign_wizard")
    return module is not None and isinstance(screen, module.CampaignWizard)


class SubgroupsCommands(Provider):
    """Sections and their actions."""

    def _entries(self) -> Iterator[tuple[str, str, str, str]]:
        """(title, help, section, action) for every palette entry."""
        app = self.app
        if is_wizard(self.screen):
            for binding in WIZARD_KEYS:
                if isinstance(binding, Binding) and self.screen.check_action(binding.action, ()):
                    key = app.get_key_display(Binding(binding.key.split(",")[0], ""))
                    yield (
                        f"Campaign: {binding.tooltip or binding.description} ({key})",
                        "In the campaign wizard",
                        WIZARD,
                        binding.action,
                    )
            return
        for binding in app.BINDINGS:
            if isinstance(binding, Binding):
                key = app.get_key_display(Binding(binding.key.split(",")[0], ""))
                yield (
                    f"{binding.description} ({key})",
                    binding.tooltip or binding.description,
                    "",
                    binding.action,
                )
        for section, entry in SECTIONS.items():
            title = entry.title
            for binding in entry.bindings:
                if isinstance(binding, Binding):
                    key = app.get_key_display(Binding(binding.key.split(",")[0], ""))
                    yield (
                        f"{title}: {binding.tooltip or binding.description} ({key})",
                        f"In the {title} section",
                        section,
                        binding.action,
                    )

    def _run(self, section: str, action: str) -> None:
        if section == WIZARD:
            screen = self.screen
            self.app.call_later(screen.run_action, action)
            return
        self.app.post_message(RunSectionAction(section, action))

    async def discover(self) -> Hits:
        for title, help_text, section, action in self._entries():
            yield DiscoveryHit(title, partial(self._run, section, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, section, action in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self._run, section, action),
                    help=help_text,
                )

"""The keys a browser keeps for itself: a console served in a browser (``subgroups
serve``) never sees them, so no action may be reachable only through one.

Chromium lets no page override its "reserved" commands
(``BrowserCommandController::IsReservedCommandOrKey``: close tab, close window,
new incognito window, new tab, new window, restore tab, next tab, previous tab,
exit), bound on Linux, Windows and ChromeOS by its accelerator table to the keys
below. Firefox keeps much the same set and quits on ctrl+q. On macOS these
commands use cmd, so there every ctrl key reaches the page.

Key names are Textual's, as bindings spell them.
"""

RESERVED: frozenset[str] = frozenset(
    {
        "ctrl+w",  # close tab
        "ctrl+f4",  # close tab
        "ctrl+shift+w",  # close window
        "alt+f4",  # close window
        "ctrl+n",  # new window
        "ctrl+shift+n",  # new incognito window
        "ctrl+t",  # new tab
        "ctrl+shift+t",  # restore the closed tab
        "ctrl+tab",  # next tab
        "ctrl+pagedown",  # next tab
        "ctrl+shift+tab",  # previous tab
        "ctrl+pageup",  # previous tab
        "ctrl+shift+q",  # quit (Chromium)
        "ctrl+q",  # quit (Firefox on Linux and Windows)
    }
)


def reserved(key: str) -> bool:
    """The browser keeps this key (a binding's key, as Textual names it)."""
    return key.strip().lower() in RESERVED

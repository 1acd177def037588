"""The console's five sections: widgets switched in one ContentSwitcher (registry: SECTIONS)."""

"""The console's six sections: widgets switched in one ContentSwitcher (registry: SECTIONS)."""

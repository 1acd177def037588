"""Every section's keys, apart from the sections themselves.

The footer, the help screen and the command palette list them; the palette and
help read them here, so they can list a section's actions before (or without)
its module being imported: sections are built when first shown.

An action's first key is the one the footer and the palette show: never one a
browser keeps for itself (ctrl+n, ctrl+t, ctrl+w...; ``subgroups serve`` runs the
console in a browser). Where a terminal key was one of those, it stays second.
"""

from textual.binding import Binding, BindingType

GROUPS: list[BindingType] = [
    Binding("n", "new_group", "New", tooltip="Create a subscription group", id="groups.new"),
    Binding(
        "e",
        "edit_group",
        "Edit",
        tooltip="Edit the selected group (also enter)",
        id="groups.edit",
    ),
    Binding(
        "a",
        "archive_group",
        "Archive",
        tooltip="Archive the selected group (asks first)",
        id="groups.archive",
    ),
    Binding(
        "u",
        "unarchive_group",
        "Unarchive",
        tooltip="Unarchive the selected group (asks first)",
        id="groups.unarchive",
    ),
    Binding(
        "f",
        "cycle_filter",
        "Filter",
        tooltip="Show active, archived or all groups",
        id="groups.filter",
    ),
    Binding(
        "r",
        "reload",
        "Reload",
        tooltip="Read the groups and counts again",
        show=False,
        id="groups.reload",
    ),
]

PROFILES: list[BindingType] = [
    Binding(
        "slash",
        "focus_search",
        "Search",
        tooltip="Search by identity, email or name",
        id="profiles.search",
    ),
    Binding(
        "s",
        "change_state",
        "Change state",
        tooltip="Subscribe or unsubscribe the selected profile (group or all email)",
        id="profiles.change_state",
    ),
    Binding(
        "i",
        "import_csv",
        "Import",
        tooltip="Import profiles from a CSV file (preview first)",
        id="profiles.import",
    ),
    Binding(
        "x",
        "explain_campaign",
        "Explain",
        tooltip="Why the selected profile gets a campaign or not (choose the campaign)",
        id="profiles.explain",
    ),
    Binding(
        "r",
        "reload",
        "Reload",
        tooltip="Search again and reload the profile",
        show=False,
        id="profiles.reload",
    ),
    Binding(
        "left_square_bracket",
        "step_back",
        "Earlier",
        tooltip="The profile as it was one event earlier (the ledger, replayed)",
        show=False,
        id="profiles.earlier",
    ),
    Binding(
        "right_square_bracket",
        "step_forward",
        "Later",
        tooltip="The profile one event later (after the latest: as it is now)",
        show=False,
        id="profiles.later",
    ),
    Binding(
        "E",
        "erase_profile",
        "Erase",
        tooltip="Erase the profile's personal data, keeping its opt-out (owners only; asks why)",
        show=False,
        id="profiles.erase",
    ),
]

SEGMENTS: list[BindingType] = [
    Binding(
        "ctrl+g",
        "add_groups",
        "+Groups",
        tooltip="Add a Subscription Groups condition",
        id="segments.add_groups",
    ),
    Binding(
        "ctrl+o",
        "add_property",
        "+Property",
        tooltip="Add a profile property condition",
        id="segments.add_property",
    ),
    Binding(
        "ctrl+b",
        "add_email",
        "+All email",
        tooltip="Add the all-email opt-out condition",
        id="segments.add_email",
    ),
    Binding(
        "ctrl+r",
        "remove_clause",
        "Remove",
        tooltip="Remove the condition that has focus",
        id="segments.remove_clause",
    ),
    Binding(
        "ctrl+s",
        "save",
        "Save",
        tooltip="Save the segment (asks for a name the first time)",
        id="segments.save",
    ),
    Binding(
        "ctrl+l,ctrl+n",
        "new_segment",
        "New",
        tooltip="Start a new, empty segment (clears the builder)",
        id="segments.new",
    ),
    Binding(
        "f2,ctrl+t",
        "rename",
        "Rename",
        tooltip="Rename the open segment",
        show=False,
        id="segments.rename",
    ),
    Binding(
        "ctrl+y",
        "duplicate",
        "Duplicate",
        tooltip="Save a copy of the open segment",
        show=False,
        id="segments.duplicate",
    ),
    Binding(
        "ctrl+x",
        "delete",
        "Delete",
        tooltip="Delete the open segment (asks first)",
        show=False,
        id="segments.delete",
    ),
    Binding(
        "ctrl+e,ctrl+w",
        "export",
        "Export",
        tooltip="Export the members to a CSV file",
        show=False,
        id="segments.export",
    ),
]

CAMPAIGNS: list[BindingType] = [
    Binding(
        "n", "new_campaign", "New", tooltip="Create a campaign (the wizard)", id="campaigns.new"
    ),
    Binding(
        "e",
        "edit_campaign",
        "Open",
        tooltip="Open the selected campaign in the wizard (also enter)",
        id="campaigns.edit",
    ),
    Binding(
        "s",
        "send_campaign",
        "Send",
        tooltip="Review and send the selected campaign (asks first)",
        id="campaigns.send",
    ),
    Binding(
        "x",
        "explain",
        "Explain",
        tooltip="Why a person gets the selected campaign or not",
        id="campaigns.explain",
    ),
    Binding(
        "c",
        "cancel_campaign",
        "Cancel campaign",
        tooltip="Cancel the selected campaign for good (asks first)",
        show=False,
        id="campaigns.cancel",
    ),
    Binding(
        "r",
        "reload",
        "Reload",
        tooltip="Read the campaigns and their reach again",
        show=False,
        id="campaigns.reload",
    ),
]

LANDING: list[BindingType] = [
    Binding(
        "e",
        "edit_settings",
        "Edit",
        tooltip="Edit the settings (to the Title field)",
        id="landing.edit",
    ),
    Binding(
        "escape",
        "leave_field",
        "Leave field",
        tooltip="Leave the field, back to the page (then number keys switch sections)",
        show=False,
        id="landing.leave_field",
    ),
    Binding(
        "ctrl+s",
        "save",
        "Save",
        tooltip="Save the landing page settings and shown groups",
        id="landing.save",
    ),
    Binding(
        "ctrl+r",
        "pick_recipient",
        "Recipient",
        tooltip="Choose whose page the preview shows (identity, email or name)",
        id="landing.recipient",
    ),
    Binding(
        "ctrl+o",
        "act_as_recipient",
        "Act as recipient",
        tooltip="Save the preview's changed boxes as that person's choices (asks first)",
        id="landing.act",
    ),
    Binding(
        "ctrl+l",
        "copy_link",
        "Copy link",
        tooltip="Copy the recipient's preferences link to the clipboard",
        show=False,
        id="landing.copy_link",
    ),
    Binding(
        "ctrl+z,ctrl+t",
        "revert",
        "Revert",
        tooltip="Discard unsaved settings, back to the stored ones (asks first)",
        show=False,
        id="landing.revert",
    ),
]

INSIGHTS: list[BindingType] = [
    Binding(
        "d",
        "toggle_days",
        "30/90 days",
        tooltip="Show the last 30 or the last 90 days",
        id="insights.days",
    ),
    Binding(
        "b",
        "cycle_by",
        "By",
        tooltip="Count unsubscribes by group, source, campaign or reason",
        id="insights.by",
    ),
    Binding(
        "r",
        "reload",
        "Reload",
        tooltip="Read the insights again",
        show=False,
        id="insights.reload",
    ),
]

"""Acting as a recipient: the console previews one person's landing page and saves for them.

``find_recipient`` turns what an admin typed into the person to preview;
``act_as_recipient`` is the whole write when the admin saves the page's boxes
as that person, through ``landing.save_choices``, so each change is one
``Channel Unsubscribed`` event, as if they had saved the page themselves
(Source ``console``, the admin as Actor).
"""

from collections.abc import Collection, Mapping

from sqlmodel import Session

from app.core import actors, landing, profiles
from app.core.errors import InvalidInput, UnknownProfile
from app.core.ledger import EventRecord
from app.core.models import Profile


def find_recipient(session: Session, text: str) -> tuple[Profile | None, str]:
    """The profile ``text`` names, and how it was found (for the picker to show).

    Blank text: the first profile by identity. Else an exact identity, else
    the first profile whose identity, email or name contains the text. None,
    with a sentence saying so, when there is nobody.
    """
    query = text.strip()
    if not query:
        first = profiles.search_profiles(session, "", limit=1)
        if not first:
            return None, "No profiles yet: the preview shows each group's default state."
        return first[0], "the first profile"
    try:
        return profiles.get_profile(session, query), ""
    except UnknownProfile:
        pass
    found = profiles.search_profiles(session, query, limit=2)
    if not found:
        return None, f"No profile matches {query!r}."
    how = "the first of the profiles" if len(found) > 1 else "the profile"
    return found[0], f"{how} matching {query!r}"


def act_as_recipient(
    *,
    session: Session,
    profile_id: int,
    group_choices: Mapping[int, bool],
    all_email: str | None,
    page_group_ids: Collection[int],
    actor: str,
    campaign_id: int | None = None,
    source: str = "console",
) -> list[EventRecord]:
    """Save the boxes an admin changed on a person's page, as that person.

    ``group_choices`` are the boxes the admin changed (group id -> ticked);
    ``all_email`` the all-email choice, None when left as it is;
    ``page_group_ids`` the groups the previewed page showed. Only those boxes
    are applied, over the person's states as they are in this transaction: a
    group the person changed themselves since the preview was read keeps
    their choice. The person is locked first (PostgreSQL; SQLite's write lock
    already holds them), so a change they commit meanwhile waits for this one.
    A choice for a group not on the page is ``InvalidInput``; a page that
    shows other groups now is ``PageOutdated``; nothing is written then. Call
    it in a write session; returns the events written, in order.
    """
    actors.require_if_admin_source(
        session, source, actors.EDITOR, "changing a person's subscriptions"
    )
    page_ids = set(page_group_ids)
    stray = sorted(set(group_choices) - page_ids)
    if stray:
        raise InvalidInput(
            f"group {stray[0]} is not on this page; nothing was saved", field="group"
        )
    # Locked: the untouched groups below are the person's current states.
    page = landing.page_for(session, profile_id, lock=True)
    ticked = {g.id for g in page.groups if group_choices.get(g.id, g.subscribed)}
    return landing.save_choices(
        session=session,
        profile_id=profile_id,
        campaign_id=campaign_id,
        subscribed_group_ids=ticked,
        all_email=all_email or page.all_email,
        source=source,
        actor=actor,
        page_group_ids=page_ids,
    )

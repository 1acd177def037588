"""The email landing page (preference center): its settings and what it does.

Settings live in one row (``LandingSettings``, id 1); a store that never saved
them reads the defaults.
"""

from sqlmodel import Session

from app.core import clock
from app.core.models import LandingSettings


def get_settings(session: Session) -> LandingSettings:
    """The landing page settings (defaults when never saved); not added to the session."""
    row = session.get(LandingSettings, 1)
    if row is not None:
        return row
    return LandingSettings(id=1, updated_at=clock.now())

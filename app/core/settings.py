"""Store-wide settings: ``subgroups settings set KEY VALUE`` and ``settings show``.

The keys (``KEYS``):

- ``base-url``: the public base URL of the landing page, put in every
  message's links. It is the very value the console's Landing page section
  edits (``LandingSettings.base_url``): setting it here goes through
  ``landing.update_settings`` and is a ``Landing Page Updated`` event.
- ``inbound-domain``: the domain whose mail comes back to ``subgroups
  inbound`` (``unsubscribe+TOKEN@D``, ``bounces+TOKEN@D``, ``fbl@D``). With it
  set, messages carry a ``mailto:`` List-Unsubscribe and a bounce address.
- ``dkim-domain``, ``dkim-selector``: the ``d=`` and ``s=`` of the DKIM
  signature; ``dkim-key``: the private key, given as a PEM file. The key is
  copied into the data directory (``app.core.dkim_keys``); the store keeps
  its fingerprint only. Mail is signed when all three are set.

The others are rows of ``store_setting``. An empty value clears a setting
(``base-url`` cannot be cleared). Changing one is an owner action and
writes one ``Settings Changed`` event (``Changes``: label -> [old, new]).
Every value is checked before anything is written: an unknown key or a bad
value is ``InvalidInput`` naming it, and nothing changes.

Other services read the settings with ``get_settings(session)``.
"""

import re
from dataclasses import dataclass, fields
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path

from sqlmodel import Session, select

from app.core import actors, clock, dkim_keys, landing, ledger, tokens
from app.core.errors import InvalidInput
from app.core.event_names import SETTINGS_CHANGED
from app.core.models import StoreSetting
from app.core.store import read_store_id

BASE_URL = "base-url"
INBOUND_DOMAIN = "inbound-domain"
DKIM_DOMAIN = "dkim-domain"
DKIM_SELECTOR = "dkim-selector"
DKIM_KEY = "dkim-key"
KEYS = (BASE_URL, INBOUND_DOMAIN, DKIM_DOMAIN, DKIM_SELECTOR, DKIM_KEY)
# How each key is named in a ``Settings Changed`` event (as ``Landing Page Updated`` does).
LABELS = {
    INBOUND_DOMAIN: "Inbound Domain",
    DKIM_DOMAIN: "DKIM Domain",
    DKIM_SELECTOR: "DKIM Selector",
    DKIM_KEY: "DKIM Key",
}

# The longest inbound address, ``unsubscribe+TOKEN@D`` (a token is 47 characters),
# within the 254 that RFC 5321 allows an address.
LONGEST_INBOUND_DOMAIN = 254 - len("unsubscribe+@") - tokens.TOKEN_LENGTH
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class StoreSettings:
    """The store's settings as plain data (None: not set)."""

    base_url: str
    inbound_domain: str | None = None
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key: str | None = None  # the key's fingerprint, ``sha256:<hex>``

    @property
    def dkim_ready(self) -> bool:
        """Whether mail is signed: domain, selector and key all set."""
        return bool(self.dkim_domain and self.dkim_selector and self.dkim_key)

    def dkim_missing(self) -> list[str]:
        """The DKIM keys still to set (empty: mail is signed)."""
        return [
            key
            for key, value in (
                (DKIM_DOMAIN, self.dkim_domain),
                (DKIM_SELECTOR, self.dkim_selector),
                (DKIM_KEY, self.dkim_key),
            )
            if not value
        ]

    def value(self, key: str) -> str | None:
        """One setting by its key (``inbound-domain``)."""
        return getattr(self, _attribute(check_key(key)))  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, str | None]:
        """``{key: value}`` for every key, in ``KEYS`` order."""
        return {key: self.value(key) for key in KEYS}


def _attribute(key: str) -> str:
    return key.replace("-", "_")


assert [f.name for f in fields(StoreSettings)] == [_attribute(k) for k in KEYS]


@dataclass(frozen=True)
class SettingChange:
    """What ``set_setting`` did: the key, its value before and after (equal: nothing changed)."""

    key: str
    old: str | None
    new: str | None

    @property
    def changed(self) -> bool:
        return self.old != self.new


def check_key(key: str) -> str:
    """``key`` if it is a setting, else ``InvalidInput`` listing them."""
    if key not in KEYS:
        raise InvalidInput(
            f"settings: unknown key {key!r}; the keys are {', '.join(KEYS)}", field="key"
        )
    return key


def get_settings(session: Session) -> StoreSettings:
    """The store's settings (one query for the rows, one for the base URL)."""
    rows = dict(session.exec(select(StoreSetting.key, StoreSetting.value)).all())
    base_url = landing.page_settings(session).base_url
    return StoreSettings(
        base_url=base_url, **{_attribute(k): rows.get(k) for k in KEYS if k != BASE_URL}
    )


def clean_domain(key: str, value: str) -> str:
    """A domain name as stored: ASCII (IDNA) form, lower case, no trailing dot."""
    text = value.strip().lower().removesuffix(".")
    where = f"settings {key} {value!r}"
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInput(f"{where}: not a domain name", field=key) from None
    labels = text.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput(
            f"{where}: not a domain name (letters, digits and hyphens in two or more "
            "dot-separated parts, such as mail.example.com)",
            field=key,
        )
    longest = LONGEST_INBOUND_DOMAIN if key == INBOUND_DOMAIN else 253
    if len(text) > longest:
        raise InvalidInput(f"{where}: longer than {longest} characters", field=key)
    return text


def clean_selector(value: str) -> str:
    """A DKIM selector as stored: one or more DNS labels, lower case."""
    text = value.strip().lower()
    if not all(_LABEL.fullmatch(label) for label in text.split(".")) or len(text) > 200:
        raise InvalidInput(
            f"settings {DKIM_SELECTOR} {value!r}: not a DKIM selector (letters, digits and "
            "hyphens, such as s2026)",
            field=DKIM_SELECTOR,
        )
    return text


def clean_value(key: str, value: str) -> str | None:
    """The value as it would be stored (None: cleared), or ``InvalidInput``. Not for dkim-key."""
    check_key(key)
    if key == BASE_URL:
        return landing.clean_base_url(value)
    if not value.strip():
        return None
    if key == DKIM_SELECTOR:
        return clean_selector(value)
    return clean_domain(key, value)


def set_setting(
    *,
    session: Session,
    key: str,
    value: str,
    actor: str,
    source: str = "cli",
    now: datetime | None = None,
) -> SettingChange:
    """Set one setting (an empty value clears it); an owner action, recorded in the ledger.

    For ``dkim-key`` the value is the path of a PEM file on this host: its
    key is checked, copied into the data directory (``dkim_keys``) and the
    store keeps its fingerprint. Call it in a write session; nothing is
    written when the key or the value is refused.
    """
    check_key(key)
    actors.require(session, actors.OWNER, f"changing the setting {key}")
    old = get_settings(session).value(key)
    if key == BASE_URL:
        page = landing.update_settings(
            session=session, actor=actor, base_url=value, source=source, now=now
        )
        return SettingChange(key, old, page.base_url)
    new: str | None
    if key == DKIM_KEY:
        new = _install_dkim_key(session, value) if value.strip() else None
    else:
        new = clean_value(key, value)
    if new == old:
        return SettingChange(key, old, new)
    ts = now or clock.now()
    row = session.get(StoreSetting, key, populate_existing=True)
    if new is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(StoreSetting(key=key, value=new, updated_at=ts, updated_by=actor))
    else:
        row.value, row.updated_at, row.updated_by = new, ts, actor
        session.add(row)
    session.flush()
    ledger.record(
        session,
        name=SETTINGS_CHANGED,
        source=source,
        actor=actor,
        now=ts,
        properties={"Changes": {LABELS[key]: [old, new]}},
    )
    return SettingChange(key, old, new)


def _install_dkim_key(session: Session, value: str) -> str:
    """Check the key file and copy it for this store; its fingerprint."""
    key = dkim_keys.read_key_file(Path(value.strip()).expanduser())
    dkim_keys.install_key(read_store_id(session), key)
    return key.fingerprint


def check_dkim_key(session: Session) -> None:
    """``DkimKeyError`` when DKIM is set up and its key file is missing or not right."""
    found = get_settings(session)
    if found.dkim_ready:
        assert found.dkim_key is not None
        dkim_keys.load_key(read_store_id(session), found.dkim_key)


def signing_warning(session: Session, from_address: str = "") -> str | None:
    """What the campaign review says when mail would go out without a DKIM signature, or
    signed for a domain the From address is not within (DMARC would not count it)."""
    found = get_settings(session)
    if not found.dkim_ready:
        return (
            "Mail goes out unsigned (no DKIM): Gmail and Yahoo expect bulk mail with one-click "
            f"unsubscribe to be DKIM-signed; set {', '.join(found.dkim_missing())} "
            "with `subgroups settings set`"
        )
    sender_domain = parseaddr(from_address)[1].rpartition("@")[2].lower().rstrip(".")
    signing = found.dkim_domain or ""
    if not sender_domain or any(
        a == b or a.endswith("." + b)
        for a, b in ((sender_domain, signing), (signing, sender_domain))
    ):
        return None
    return (
        f"Mail is DKIM-signed for {signing}, but it is from {sender_domain}: receivers "
        "checking DMARC will not count the signature (set dkim-domain to the From domain)"
    )


def dkim_key_path(session: Session, settings: StoreSettings | None = None) -> Path | None:
    """Where the store's DKIM key file is (None: no key set)."""
    fingerprint = (settings or get_settings(session)).dkim_key
    if not fingerprint:
        return None
    return dkim_keys.key_path(read_store_id(session), fingerprint)

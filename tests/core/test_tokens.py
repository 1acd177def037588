"""Signed link tokens: round trip, tampering, expiry, rotation, the 0600 keyring file."""

import base64
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest

from app.core import tokens
from app.core.tokens import BadToken, SecretFileError, StoreBinding, load_keyring

STORE = StoreBinding("a" * 32)  # the store the links are signed for


def test_a_token_names_its_profile_and_campaign(link_keyring: Path) -> None:
    ring = load_keyring()
    token = ring.sign(42, 7, today=date(2026, 11, 27), store=STORE)
    said = ring.verify(token, today=date(2026, 11, 27), store=STORE)
    assert (said.profile_id, said.campaign_id, said.issued) == (42, 7, date(2026, 11, 27))
    assert ring.verify(ring.sign(42, store=STORE), store=STORE).campaign_id is None
    # Opaque: the profile id is not readable as text in the link. (A long id: a short one
    # like 42 turns up by chance in the MAC's base64 in about one keyring in fifty.)
    assert "987654321" not in ring.sign(987654321, 7, store=STORE)


def test_the_keyring_file_is_private_and_reused(link_keyring: Path) -> None:
    first = load_keyring()
    assert stat.S_IMODE(link_keyring.stat().st_mode) == 0o600
    token = first.sign(1, 2, store=STORE)
    assert load_keyring().verify(token, store=STORE).profile_id == 1


def test_a_keyring_readable_by_others_is_refused(link_keyring: Path) -> None:
    load_keyring()
    link_keyring.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        load_keyring()


@pytest.mark.parametrize("how", ["flip", "truncate", "extend", "garbage", "empty"])
def test_altered_tokens_are_refused(link_keyring: Path, how: str) -> None:
    ring = load_keyring()
    token = ring.sign(42, 7, store=STORE)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    if how == "flip":
        raw[5] ^= 1  # another profile id, same signature
        altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    elif how == "truncate":
        altered = token[:-3]
    elif how == "extend":
        altered = token + "AA"
    elif how == "garbage":
        altered = "not a token!"
    else:
        altered = ""
    with pytest.raises(BadToken):
        ring.verify(altered, store=STORE)


def test_a_token_from_another_install_is_refused(tmp_path: Path, link_keyring: Path) -> None:
    other = load_keyring(tmp_path / "other.json")
    with pytest.raises(BadToken, match="signature"):
        load_keyring().verify(other.sign(42, 7, store=STORE), store=STORE)


def test_links_work_for_two_years_then_expire(link_keyring: Path) -> None:
    ring = load_keyring()
    issued = date(2026, 1, 1)
    token = ring.sign(1, None, today=issued, store=STORE)
    assert ring.verify(token, today=issued + timedelta(days=366), store=STORE).profile_id == 1
    with pytest.raises(BadToken, match="expired"):
        ring.verify(token, today=issued + timedelta(days=tokens.MAX_AGE_DAYS + 1), store=STORE)


def test_rotation_keeps_old_links_until_their_key_is_retired(link_keyring: Path) -> None:
    ring = load_keyring()
    old = ring.sign(5, 1, store=STORE)
    new_id = ring.rotate()
    new = ring.sign(5, 1, store=STORE)
    reloaded = load_keyring()
    assert reloaded.verify(old, store=STORE).key_id == 1
    assert reloaded.verify(new, store=STORE).key_id == new_id
    reloaded.retire(1)
    # A retired key is unknown now: its links are answered as any link that is not ours.
    with pytest.raises(BadToken, match="not valid"):
        load_keyring().verify(old, store=STORE)
    assert load_keyring().verify(new, store=STORE).profile_id == 5

"""``subgroups campaigns`` list, create, show and explain, as scripts use them:
the numbers match the core's, JSON shapes, exit codes, one-line errors, nothing
written on bad input."""

import json
from pathlib import Path

import pytest
from cli_runner import CliRunner

from app.core import campaigns, eligibility
from app.core.seed import load_sample_data
from app.core.store import open_store

BODY = "Hello {{ name }},\nDeals inside.\nLeave: {{ unsubscribe_url }}\n"


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "sample.db")
    store = open_store(path)
    load_sample_data(store=store, actor="ada")
    store.dispose()
    return path


@pytest.fixture
def body(tmp_path: Path) -> str:
    path = tmp_path / "body.txt"
    path.write_text(BODY, encoding="utf-8")
    return str(path)


def _create(cli: CliRunner, db: str, body: str, *extra: str) -> tuple[int, str, str]:
    return cli(
        "campaigns", "create", "Black Friday", "--subject", "Deals", "--from",
        "Shop <shop@example.com>", "--body-file", body, "--db", db, *extra,
    )  # fmt: skip


def test_create_then_show_gives_the_breakdown_of_the_core(
    cli: CliRunner, db: str, body: str
) -> None:
    code, out, err = _create(cli, db, body, "--do-not-send-to", "Promotions,Holiday sale 2025")
    assert code == 1 and "archived" in err  # an archived group cannot be newly picked
    code, out, err = _create(cli, db, body, "--do-not-send-to", "Promotions")
    assert (code, err) == (0, "")
    assert "Created campaign 'Black Friday'" in out
    code, out, _ = cli("campaigns", "show", "black friday", "--json", "--db", db)
    shown = json.loads(out)
    store = open_store(db)
    with store.read() as session:
        expected = eligibility.reach(store, campaigns.get_campaign(session, "Black Friday"))
    store.dispose()
    assert shown["reach"] == expected.reach > 0
    assert [s["count"] for s in shown["steps"]] == [s.count for s in expected.steps]
    assert [s["step"] for s in shown["steps"]] == [
        "audience", "only_subscribed_to", "all_email", "undeliverable", "do_not_send_to",
    ]  # fmt: skip
    assert shown["do_not_send_to"] == ["Promotions"]
    code, out, _ = cli("campaigns", "show", "Black Friday", "--db", db)
    assert f"Reach: {expected.reach:,} of 3,000 profiles" in out
    assert "Minus people who left Promotions" in out
    assert "Minus undeliverable addresses" in out


def test_list_shows_status_reach_and_sent(cli: CliRunner, db: str, body: str) -> None:
    code, out, _ = cli("campaigns", "list", "--db", db)
    assert code == 0 and "No campaigns yet" in out
    _create(cli, db, body, "--do-not-send-to", "Promotions")
    code, out, _ = cli("campaigns", "list", "--json", "--db", db)
    (row,) = json.loads(out)
    assert (row["name"], row["status"], row["audience"], row["sent"]) == (
        "Black Friday", "draft", "All profiles", 0,
    )  # fmt: skip
    assert row["reach"] > 0


def test_explain_says_who_is_left_out_and_why(cli: CliRunner, db: str, body: str) -> None:
    _create(cli, db, body, "--do-not-send-to", "Promotions")
    store = open_store(db)
    with store.read() as session:
        campaign = campaigns.get_campaign(session, "Black Friday")
        everyone = eligibility.audience_ids(store, campaign)
        kept = eligibility.eligible_now(session, campaign, everyone)
    from app.core.models import Profile

    with store.read() as session:
        left_out = session.get(Profile, next(p for p in everyone if p not in kept))
        kept_one = session.get(Profile, next(iter(kept)))
        assert left_out is not None and kept_one is not None
        out_identity, in_identity = left_out.identity, kept_one.identity
    store.dispose()
    code, out, _ = cli("campaigns", "explain", "Black Friday", out_identity, "--json", "--db", db)
    shown = json.loads(out)
    assert code == 0 and shown["eligible"] is False
    assert "left out at" in shown["reason"]
    code, out, _ = cli("campaigns", "explain", "Black Friday", in_identity, "--db", db)
    assert code == 0 and f"{in_identity} gets 'Black Friday'" in out


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (("--subject", ""), 2, "Subject is empty"),
        (("--from", "not-an-address"), 2, "is not an email address"),
        (("--do-not-send-to", "Nope"), 1, "No group is named 'Nope'"),
        (("--segment", "Nope"), 1, "No segment is named 'Nope'"),
        # Issue 8: the subject is a template like the body; From is exactly one address.
        (
            ("--subject", "Hello {{ nmae }}, winter is here"),
            2,
            "Subject, column 7: unknown tag {{ nmae }}",
        ),
        (("--from", "a@x.org, b@y.org"), 2, "it takes exactly one address"),
        (("--from", '"A" <a@x.org>, b@y.org'), 2, "it takes exactly one address"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_created(
    cli: CliRunner, db: str, body: str, change: tuple[str, str], code: int, message: str
) -> None:
    argv = ["--subject", "Deals", "--from", "shop@example.com", "--body-file", body]
    if change[0] in argv:
        argv[argv.index(change[0]) + 1] = change[1]
    else:
        argv += list(change)
    got, out, err = cli("campaigns", "create", "X", *argv, "--db", db)
    assert got == code and message in err and err.count("\n") == 1
    assert cli("campaigns", "list", "--json", "--db", db)[1].strip() == "[]"


def test_a_body_without_an_unsubscribe_link_is_refused(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("Hello {{ name }}\n", encoding="utf-8")
    code, _, err = cli(
        "campaigns", "create", "X", "--subject", "S", "--from", "a@example.com",
        "--body-file", str(bad), "--db", db,
    )  # fmt: skip
    assert code == 2 and "no {{ unsubscribe_url }} link" in err and str(bad) in err


def test_an_unknown_tag_in_the_body_is_refused_naming_tag_line_and_column(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    bad = tmp_path / "typo.txt"
    bad.write_text("Hello {{ name }},\nSee {{ nmae }}\nLeave: {{ unsubscribe_url }}\n")
    code, out, err = cli(
        "campaigns", "create", "X", "--subject", "S", "--from", "a@example.com",
        "--body-file", str(bad), "--db", db,
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert "line 2, column 5: unknown tag {{ nmae }}" in err and err.count("\n") == 1
    assert cli("campaigns", "list", "--json", "--db", db)[1].strip() == "[]"


def test_unknown_campaign_and_person(cli: CliRunner, db: str, body: str) -> None:
    code, _, err = cli("campaigns", "show", "Nope", "--db", db)
    assert code == 1 and "No campaign is named 'Nope'" in err
    _create(cli, db, body)
    code, _, err = cli("campaigns", "explain", "Black Friday", "nobody@nowhere", "--db", db)
    assert code == 1 and "nobody@nowhere" in err

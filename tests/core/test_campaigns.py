"""Campaign drafts, their checks, the eligibility chain, its breakdown and the explainer."""

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from app.core import (
    body_template,
    bounces,
    campaigns,
    eligibility,
    explainer,
    groups,
    landing,
    profiles,
    segments,
    subscriptions,
)
from app.core.errors import InvalidInput, NameTaken, RuleRefused, UnknownProfile, WrongStatus
from app.core.models import Event, Group, GroupState, Profile
from app.core.segment_rules import PropertyCondition, SegmentRule
from app.core.store import Store, open_store

ACTOR = "tester"
BODY = "Hi {{ name }}\nLeave: {{ unsubscribe_url }}\n"


def _group(store: Store, name: str, policy: str = "opt-out") -> int:
    with store.write() as session:
        group = groups.create_group(session=session, name=name, policy=policy, actor=ACTOR)
        assert group.id is not None
        return group.id


def _profile(store: Store, identity: str, *, country: str = "DE", email: bool = True) -> int:
    with store.write() as session:
        profile = profiles.create_profile(
            session=session,
            identity=identity,
            email=f"{identity}@example.com" if email else None,
            name=identity.title(),
            properties={"country": country},
        )
        assert profile.id is not None
        return profile.id


def _set(
    store: Store, identity: str, group_id: int | None, status: str, source: str = "cli"
) -> None:
    with store.write() as session:
        profile = profiles.get_profile(session, identity)
        group = session.get(Group, group_id) if group_id else None
        subscriptions.set_state(
            session=session, profile=profile, group=group, status=status, source=source, actor=ACTOR
        )


def _campaign(store: Store, name: str = "Black Friday", **fields: object) -> int:
    with store.write() as session:
        campaign = campaigns.create_campaign(
            session=session,
            name=name,
            actor=ACTOR,
            subject="Deals",
            from_address="Shop <shop@example.com>",
            body=BODY,
            **fields,  # type: ignore[arg-type]
        )
        assert campaign.id is not None
        return campaign.id


def _get(store: Store, campaign_id: int) -> campaigns.Campaign:
    with store.read() as session:
        return campaigns.get_campaign_by_id(session, campaign_id)


@pytest.fixture
def shop(store: Store) -> Iterator[dict[str, int]]:
    """Newsletter and Promotions (opt-out), Beta (opt-in); five people with known choices."""
    ids = {
        "newsletter": _group(store, "Newsletter"),
        "promotions": _group(store, "Promotions"),
        "beta": _group(store, "Beta", "opt-in"),
    }
    for identity, country in [
        ("ada", "DE"),
        ("bo", "DE"),
        ("cy", "FR"),
        ("di", "DE"),
        ("ed", "DE"),
    ]:
        _profile(store, identity, country=country)
    _set(store, "bo", ids["promotions"], "unsubscribed", "landing_page")  # left Promotions
    _set(store, "cy", None, "unsubscribed")  # left all email
    _set(store, "di", ids["beta"], "subscribed")  # said yes to Beta
    _set(store, "ed", ids["newsletter"], "unsubscribed")
    yield ids


# --- fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "From is empty"),
        ("shop", "not an email address"),
        ("shop@localhost", "not an email address"),
        ("Shop <shop@example.com", "not an email address"),
        ("a b@example.com", "not an email address"),
    ],
)
def test_a_from_that_is_not_an_address_is_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        campaigns.clean_from_address(value)
    assert caught.value.field == "from_address"


def test_good_from_addresses_are_kept_as_typed() -> None:
    assert campaigns.clean_from_address(" news@example.com ") == "news@example.com"
    assert campaigns.clean_from_address("Ex News <news@mail.example.co.uk>") == (
        "Ex News <news@mail.example.co.uk>"
    )


def test_an_empty_subject_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Subject is empty"):
        campaigns.clean_subject("   ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Hello {{ name }}", "no {{ unsubscribe_url }} link"),
        ("Hi\n  {{ nme }} {{ unsubscribe_url }}", "line 2, column 3: unknown tag {{ nme }}"),
        ("Hi {{ name } {{ unsubscribe_url }}", "line 1, column 4: '{{ name }' is not a tag"),
        ("   \n", "the body is empty"),
    ],
)
def test_body_template_problems_name_line_and_column(body: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        body_template.check_body(body)
    assert message in caught.value.message
    assert caught.value.field == "body"


def test_the_default_body_passes_and_renders_every_tag() -> None:
    body_template.check_body(body_template.DEFAULT_BODY)
    text = body_template.render_body(
        body_template.DEFAULT_BODY,
        {"name": "Ada", "unsubscribe_url": "http://x/u/T", "preferences_url": "http://x/p/T"},
    )
    assert "Hello Ada" in text and "http://x/u/T" in text and "http://x/p/T" in text
    assert "{{" not in text


# --- drafts ------------------------------------------------------------------------------


def test_a_draft_can_start_with_only_a_name_and_says_what_stops_a_send(store: Store) -> None:
    with store.write() as session:
        draft = campaigns.create_campaign(session=session, name="Draft", actor=ACTOR, body="")
        problems = dict(campaigns.send_problems(session, draft))
    assert set(problems) == {"subject", "from_address", "body"}
    with store.read() as session:
        events = session.exec(select(Event).where(Event.name == campaigns.CAMPAIGN_CREATED)).all()
    assert [e.properties["Campaign"] for e in events] == ["Draft"]


def test_campaign_names_are_unique_ignoring_case(store: Store) -> None:
    _campaign(store, "Spring")
    with pytest.raises(NameTaken):
        _campaign(store, "SPRING")


def test_archived_groups_stay_attached_but_cannot_be_newly_picked(
    store: Store, shop: dict[str, int]
) -> None:
    cid = _campaign(store, do_not_send_to=[shop["promotions"]])
    with store.write() as session:
        groups.archive_group(session=session, group_id=shop["promotions"], actor=ACTOR)
    with store.write() as session:  # keeping it (and adding an active one) is fine
        campaigns.update_campaign(
            session=session,
            campaign_id=cid,
            actor=ACTOR,
            do_not_send_to=[shop["promotions"], shop["newsletter"]],
        )
    other = _campaign(store, "Other")
    with pytest.raises(RuleRefused, match="archived"), store.write() as session:
        campaigns.update_campaign(
            session=session, campaign_id=other, actor=ACTOR, do_not_send_to=[shop["promotions"]]
        )
    assert _get(store, other).do_not_send_to == []
    # ...and the archived group's opt-outs are still enforced: bo left Promotions.
    with store.read() as session:
        assert profiles.get_profile(session, "bo").id not in eligibility.eligible_now(
            session, _get(store, cid), [profiles.get_profile(session, "bo").id or 0]
        )


def test_a_sent_campaign_cannot_be_changed_or_sent_again(store: Store) -> None:
    cid = _campaign(store)
    with store.write() as session:
        campaigns.set_status(
            session=session, campaign_id=cid, status=campaigns.SENDING, actor=ACTOR
        )
        campaigns.set_status(session=session, campaign_id=cid, status=campaigns.SENT, actor=ACTOR)
    with pytest.raises(WrongStatus, match="only drafts and paused"), store.write() as session:
        campaigns.update_campaign(session=session, campaign_id=cid, actor=ACTOR, subject="Again")
    with store.read() as session:
        problems = campaigns.send_problems(session, _get(store, cid))
        names = [e.name for e in session.exec(select(Event).where(Event.campaign_id == cid)).all()]
    assert problems and "already sent" in problems[0][1]
    assert names == [
        campaigns.CAMPAIGN_CREATED,
        campaigns.CAMPAIGN_SEND_STARTED,
        campaigns.CAMPAIGN_SENT,
    ]


def test_no_do_not_send_groups_is_warned_about(store: Store, shop: dict[str, int]) -> None:
    cid = _campaign(store)
    with store.read() as session:
        notes = campaigns.warnings(session, _get(store, cid))
    assert any("unsubscribes people from all email" in note for note in notes)
    # One-click needs HTTPS: the default base URL (plain http on loopback) is warned about.
    assert any("only over HTTPS" in note for note in notes)
    with store.write() as session:
        landing.update_settings(session=session, actor=ACTOR, base_url="https://prefs.example.com")
    with store.read() as session:
        assert not any("HTTPS" in n for n in campaigns.warnings(session, _get(store, cid)))


# --- the chain -----------------------------------------------------------------------------


def test_the_breakdown_counts_each_step_in_order(store: Store, shop: dict[str, int]) -> None:
    cid = _campaign(store, do_not_send_to=[shop["promotions"]])
    result = eligibility.reach(store, _get(store, cid))
    assert [(s.key, s.count, s.dropped) for s in result.steps] == [
        ("audience", 5, 0),
        ("only_subscribed_to", 5, 0),
        ("all_email", 4, 1),  # cy left all email
        ("undeliverable", 4, 0),  # nobody bounced
        ("do_not_send_to", 3, 1),  # bo left Promotions
    ]
    assert result.reach == 3
    assert "Promotions" in result.steps[-1].label


def test_a_segment_audience_and_only_subscribed_to_all_of(
    store: Store, shop: dict[str, int]
) -> None:
    with store.write() as session:
        segment = segments.save_segment(
            session=session,
            name="Germany",
            rule=SegmentRule((PropertyCondition("country", "equals", ("de",)),)),
            actor=ACTOR,
        )
    cid = _campaign(
        store,
        segment_id=segment.id,
        only_subscribed_to=[shop["beta"], shop["newsletter"]],
        do_not_send_to=[shop["promotions"]],
    )
    result = eligibility.reach(store, _get(store, cid))
    # Germany: ada, bo, di, ed. Beta is opt-in: only di said yes (and keeps Newsletter).
    assert [s.count for s in result.steps] == [4, 1, 1, 1, 1]
    assert eligibility.audience_ids(store, _get(store, cid)) == sorted(
        _ids(store, ["ada", "bo", "di", "ed"])
    )


def _ids(store: Store, identities: list[str]) -> list[int]:
    with store.read() as session:
        return [profiles.get_profile(session, i).id or 0 for i in identities]


def test_the_breakdown_follows_a_change_made_after_it_was_counted(
    store: Store, shop: dict[str, int]
) -> None:
    cid = _campaign(store, do_not_send_to=[shop["promotions"]])
    assert eligibility.reach(store, _get(store, cid)).reach == 3
    _set(store, "ada", shop["promotions"], "unsubscribed", "one_click")
    assert eligibility.reach(store, _get(store, cid)).reach == 2


def test_explain_names_the_step_that_drops_someone(store: Store, shop: dict[str, int]) -> None:
    cid = _campaign(store, do_not_send_to=[shop["promotions"]])
    campaign = _get(store, cid)
    bo = explainer.explain(store, campaign, "bo")
    assert not bo.eligible
    assert "left Promotions" in bo.reason and "landing_page" in bo.reason
    assert [s.passed for s in bo.steps] == [True, True, True, True, False, True]
    cy = explainer.explain(store, campaign, "cy")
    assert not cy.eligible and "unsubscribed from all email" in cy.reason
    ada = explainer.explain(store, campaign, "ada")
    assert ada.eligible and ada.reason.startswith("gets it")
    assert ada.to_json()["eligible"] is True
    with pytest.raises(UnknownProfile):
        explainer.explain(store, campaign, "nobody")


def test_explain_an_opt_in_group_never_joined(store: Store, shop: dict[str, int]) -> None:
    cid = _campaign(store, only_subscribed_to=[shop["beta"]])
    ada = explainer.explain(store, _get(store, cid), "ada")
    assert not ada.eligible
    assert "Beta is opt-in and they never subscribed" in ada.reason


def test_unsubscribes_are_attributed_to_their_campaign(store: Store, shop: dict[str, int]) -> None:
    cid = _campaign(store, do_not_send_to=[shop["promotions"]])
    with store.write() as session:
        ada = profiles.get_profile(session, "ada")
        promotions = session.get(Group, shop["promotions"])
        subscriptions.set_state(
            session=session,
            profile=ada,
            group=promotions,
            status="unsubscribed",
            source="one_click",
            actor="",
            campaign_id=cid,
        )
        subscriptions.set_state(
            session=session,
            profile=ada,
            group=promotions,
            status="subscribed",
            source="landing_page",
            actor="",
            campaign_id=cid,
        )
    with store.read() as session:
        (row,) = campaigns.list_campaigns(session)
    assert (row.name, row.unsubscribes, row.sent, row.audience) == (
        "Black Friday",
        1,
        0,
        "All profiles",
    )


# --- the chain against a reference, on random stores ----------------------------------------------

STATE = st.sampled_from([None, "subscribed", "unsubscribed"])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    policies=st.lists(st.sampled_from(["opt-out", "opt-in"]), min_size=1, max_size=4),
    people=st.lists(
        st.tuples(st.booleans(), st.lists(STATE, min_size=4, max_size=4), st.booleans()),
        min_size=0,
        max_size=12,
    ),
    only=st.lists(st.integers(0, 3), max_size=2),
    blocked=st.lists(st.integers(0, 3), max_size=3),
    archive=st.integers(-1, 3),
)
def test_the_chain_matches_a_reference(
    tmp_path_factory: pytest.TempPathFactory,
    policies: list[str],
    people: list[tuple[bool, list[str | None], bool]],
    only: list[int],
    blocked: list[int],
    archive: int,
) -> None:
    store = open_store(tmp_path_factory.mktemp("chain") / "store.db")
    try:
        gids = [_group(store, f"G{i}", p) for i, p in enumerate(policies)]
        pick = lambda picks: sorted({gids[i % len(gids)] for i in picks})  # noqa: E731
        for n, (opted_out, states, bounced) in enumerate(people):
            _profile(store, f"p{n}")
            if opted_out:
                _set(store, f"p{n}", None, "unsubscribed")
            if bounced:  # a hard bounce: the address is undeliverable
                with store.write() as session:
                    bounces.record_bounce(
                        session,
                        profile_id=profiles.get_profile(session, f"p{n}").id or 0,
                        campaign_id=None,
                        bounce=bounces.Bounce("5.1.1", "failed", "550 user unknown", ""),
                    )
            for gid, state in zip(gids, states, strict=False):
                if state:
                    _set(store, f"p{n}", gid, state)
        cid = _campaign(store, only_subscribed_to=pick(only), do_not_send_to=pick(blocked))
        if archive >= 0:  # archived after it was attached: still enforced
            with store.write() as session:
                groups.archive_group(
                    session=session, group_id=gids[archive % len(gids)], actor=ACTOR
                )
        campaign = _get(store, cid)
        result = eligibility.reach(store, campaign)

        with store.read() as session:
            everyone = session.exec(select(Profile)).all()
            stored = {(r.profile_id, r.group_id): r.state for r in session.exec(select(GroupState))}
            policy = {g.id: g.policy for g in session.exec(select(Group))}

        def subscribed(pid: int, gid: int) -> bool:
            state = stored.get((pid, gid))
            return state == "subscribed" or (state is None and policy[gid] == "opt-out")

        left = [p.id for p in everyone]
        expected = [len(left)]
        left = [p for p in left if all(subscribed(p, g) for g in campaign.only_subscribed_to)]
        expected.append(len(left))
        opted = {p.id for p in everyone if p.all_email == "unsubscribed"}
        left = [p for p in left if p not in opted]
        expected.append(len(left))
        bounced_names = {f"p{n}" for n, (_o, _s, b) in enumerate(people) if b}
        bounced_ids = {p.id for p in everyone if p.identity in bounced_names}
        left = [p for p in left if p not in bounced_ids]
        expected.append(len(left))
        left = [p for p in left if all(subscribed(p, g) for g in campaign.do_not_send_to)]
        expected.append(len(left))

        assert [s.count for s in result.steps] == expected
        with store.read() as session:
            assert eligibility.eligible_now(
                session, campaign, eligibility.audience_ids(store, campaign)
            ) == set(left)
    finally:
        store.dispose()


# --- issue 8: one template engine, the placeholder, reach 0, one From address ---------


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("Hello {{ nmae }}, winter is here", "Subject, column 7: unknown tag {{ nmae }}"),
        ("Hi {{ name }} and {{ x-y }}", "Subject, column 19: '{{ x-y }}' is not a tag"),
    ],
)
def test_a_subject_with_an_unknown_tag_is_refused(subject: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        campaigns.clean_subject(subject)
    assert message in caught.value.message
    assert caught.value.field == "subject"


@pytest.mark.parametrize("field", ["subject", "body"])
def test_an_unknown_tag_is_refused_at_create_and_update(store: Store, field: str) -> None:
    bad = {
        "subject": "Hello {{ nmae }}",
        "body": "Hi {{ name }}\n{{ nmae }}\nLeave: {{ unsubscribe_url }}\n",
    }[field]
    with pytest.raises(InvalidInput, match=r"unknown tag \{\{ nmae \}\}"), store.write() as s:
        campaigns.create_campaign(session=s, name="Typo", actor=ACTOR, **{field: bad})
    cid = _campaign(store, "Fine")
    with pytest.raises(InvalidInput, match="nmae") as caught, store.write() as s:
        campaigns.update_campaign(session=s, campaign_id=cid, actor=ACTOR, **{field: bad})
    assert caught.value.field == field
    if field == "body":
        assert "line 2, column 1" in caught.value.message
    with store.read() as s:
        assert [c.name for c in campaigns.list_campaigns(s)] == ["Fine"]
        assert (
            getattr(campaigns.get_campaign_by_id(s, cid), field)
            == {"subject": "Deals", "body": BODY}[field]
        )


def test_the_untouched_placeholder_body_cannot_be_sent(store: Store) -> None:
    with store.write() as session:
        draft = campaigns.create_campaign(
            session=session, name="Draft", actor=ACTOR, subject="S", from_address="a@example.com"
        )
        problems = dict(campaigns.send_problems(session, draft))
    assert problems == {
        "body": "the body still says 'Write your message here.' (line 3): write the message"
    }


@pytest.mark.parametrize(
    "value",
    [
        "a@x.org, b@y.org",
        '"A" <a@x.org>, b@y.org',
        "A <a@x.org>, B <b@y.org>",
        "a@x.org; b@y.org",
    ],
)
def test_from_takes_exactly_one_address(store: Store, value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        campaigns.clean_from_address(value)
    assert caught.value.field == "from_address"
    assert "exactly one address" in caught.value.message
    cid = _campaign(store)
    with pytest.raises(InvalidInput, match="exactly one address"), store.write() as s:
        campaigns.update_campaign(session=s, campaign_id=cid, actor=ACTOR, from_address=value)
    assert _get(store, cid).from_address == "Shop <shop@example.com>"


def test_a_reach_of_zero_stops_a_draft_from_being_sent(store: Store) -> None:
    cid = _campaign(store)
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, cid)
        assert campaigns.send_problems(session, campaign, reach=1) == []
        assert campaigns.send_problems(session, campaign, reach=0) == [
            (
                "reach",
                "Campaign 'Black Friday' reaches nobody (reach 0): change its audience or groups",
            )
        ]

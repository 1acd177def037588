"""Segment rules: the conditions a segment is the AND of, their JSON form,
their validation, and the plain sentence the builder shows.

Conditions (DESIGN.md §1, "Segments"):
- ``GroupsCondition``: Include or Exclude; All (every active group at the
  time of counting) or named groups; ANY or ALL. Include ANY [A, B] is people
  subscribed to A or B; Exclude ANY [A, B] drops people subscribed to A or B.
- ``PropertyCondition``: a profile field (identity, email, name) or a custom
  property: equals, not equals, contains, one of, is set, is not set. Text
  comparisons ignore case. "Not equals" is the exact complement of "equals",
  so it includes people for whom the property is not set.
- ``EmailCondition``: the channel-wide email state.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from app.core.errors import InvalidInput

INCLUDE: Final = "include"
EXCLUDE: Final = "exclude"
ANY: Final = "any"
ALL: Final = "all"
PROFILE_FIELDS = ("identity", "email", "name")
OPS = ("equals", "not_equals", "contains", "one_of", "is_set", "not_set")
OP_WORDS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "one_of": "is one of",
    "is_set": "is set",
    "not_set": "is not set",
}


@dataclass(frozen=True)
class GroupsCondition:
    """Subscription Groups: include or exclude people by the groups they are subscribed to."""

    mode: Literal["include", "exclude"] = INCLUDE
    # None means All: every active group when counted.
    group_ids: tuple[int, ...] | None = None
    match: Literal["any", "all"] = ANY
    type: str = field(default="groups", init=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "groups",
            "mode": self.mode,
            "groups": "all" if self.group_ids is None else list(self.group_ids),
            "match": self.match,
        }


@dataclass(frozen=True)
class PropertyCondition:
    """A profile field or custom property compared with values."""

    key: str
    op: str = "equals"
    values: tuple[str, ...] = ()
    type: str = field(default="property", init=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": "property", "key": self.key, "op": self.op, "values": list(self.values)}


@dataclass(frozen=True)
class EmailCondition:
    """The channel-wide email state: subscribed, or unsubscribed from all email."""

    state: Literal["subscribed", "unsubscribed"] = "subscribed"
    type: str = field(default="email", init=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": "email", "state": self.state}


Condition = GroupsCondition | PropertyCondition | EmailCondition


@dataclass(frozen=True)
class SegmentRule:
    """A segment: the AND of its conditions (none: everyone)."""

    conditions: tuple[Condition, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"conditions": [c.to_json() for c in self.conditions]}

    def replace(self, index: int, condition: Condition) -> "SegmentRule":
        items = list(self.conditions)
        items[index] = condition
        return SegmentRule(tuple(items))

    def add(self, condition: Condition) -> "SegmentRule":
        return SegmentRule((*self.conditions, condition))

    def remove(self, index: int) -> "SegmentRule":
        items = list(self.conditions)
        del items[index]
        return SegmentRule(tuple(items))


def _bad(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"Segment condition {where}: {message}", field="conditions")


def condition_from_json(data: Mapping[str, Any], where: str = "") -> Condition:
    """One condition from its JSON form, checked."""
    kind = data.get("type")
    if kind == "groups":
        mode = data.get("mode", INCLUDE)
        match = data.get("match", ANY)
        groups = data.get("groups", "all")
        if mode not in (INCLUDE, EXCLUDE):
            raise _bad(where, f"mode {mode!r} is not include or exclude")
        if match not in (ANY, ALL):
            raise _bad(where, f"match {match!r} is not any or all")
        if groups == "all":
            ids = None
        elif isinstance(groups, list) and groups and all(isinstance(g, int) for g in groups):
            ids = tuple(dict.fromkeys(groups))
        else:
            raise _bad(where, 'groups must be "all" or a non-empty list of group ids')
        return GroupsCondition(mode=mode, group_ids=ids, match=match)
    if kind == "property":
        key = str(data.get("key", "")).strip()
        op = data.get("op", "equals")
        values = data.get("values", [])
        if not key:
            raise _bad(where, "a property name is required")
        if op not in OPS:
            raise _bad(where, f"operator {op!r} is not one of {', '.join(OPS)}")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _bad(where, "values must be a list of text")
        if op in ("equals", "not_equals", "contains") and len(values) != 1:
            raise _bad(where, f"{OP_WORDS[op]!r} takes exactly one value")
        if op == "one_of" and not values:
            raise _bad(where, "'is one of' takes at least one value")
        if op in ("is_set", "not_set"):
            values = []
        return PropertyCondition(key=key, op=op, values=tuple(values))
    if kind == "email":
        state = data.get("state", "subscribed")
        if state not in ("subscribed", "unsubscribed"):
            raise _bad(where, f"email state {state!r} is not subscribed or unsubscribed")
        return EmailCondition(state=state)
    raise _bad(where, f"unknown condition type {kind!r}")


def rule_from_json(data: Mapping[str, Any] | None) -> SegmentRule:
    """A rule from its stored JSON form, checked."""
    items = (data or {}).get("conditions", [])
    if not isinstance(items, list):
        raise InvalidInput("Segment definition: conditions must be a list", field="conditions")
    return SegmentRule(tuple(condition_from_json(c, f"#{i + 1}") for i, c in enumerate(items)))


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def describe_condition(condition: Condition, group_name: Callable[[int], str]) -> str:
    """One condition as words (group names are user text: callers escape when rendering)."""
    if isinstance(condition, GroupsCondition):
        if condition.group_ids is None:
            target_any, target_all = "any group", "every group"
            names: list[str] = []
        else:
            names = [group_name(g) for g in condition.group_ids]
            target_any = names[0] if len(names) == 1 else f"any of {_names(names)}"
            target_all = names[0] if len(names) == 1 else f"all of {_names(names)}"
        if condition.mode == INCLUDE:
            return f"subscribed to {target_any if condition.match == ANY else target_all}"
        if condition.match == ANY:
            return "not subscribed to " + (target_any if len(names) != 1 else names[0])
        if condition.group_ids is not None and len(names) == 2:
            return f"not subscribed to both {names[0]} and {names[1]}"
        return f"not subscribed to {target_all}"
    if isinstance(condition, PropertyCondition):
        words = OP_WORDS[condition.op]
        if condition.op in ("is_set", "not_set"):
            return f"{condition.key} {words}"
        value = _names(condition.values)
        tail = " (or not set)" if condition.op == "not_equals" else ""
        return f"{condition.key} {words} {value}{tail}"
    if condition.state == "unsubscribed":
        return "unsubscribed from all email"
    return "not unsubscribed from all email"


def describe(rule: SegmentRule, group_name: Callable[[int], str]) -> str:
    """The rule as one plain sentence, e.g. "People subscribed to any of Newsletter,
    Offers, and not subscribed to Promotions"."""
    if not rule.conditions:
        return "Everyone"
    return "People " + ", and ".join(describe_condition(c, group_name) for c in rule.conditions)

"""The landing page's HTML: small, escaped, accessible, no JavaScript, nothing external.

Every piece of text that came from a user (the page's wording, group names and
descriptions, the recipient's address) goes through ``esc``; nothing else is
put into the markup. Forms post to their own URL (no ``action``), and links
between pages are relative, so the pages work under any base URL or path
prefix a proxy puts in front of them. The one stylesheet is inline and named
by its hash in the Content-Security-Policy, which allows nothing else.
"""

import base64
import hashlib
from html import escape

from app.core.landing import LandingPage, PageSettings
from app.core.one_click import OneClickView, UnsubscribeScope
from app.core.unsubscribe_reasons import DETAILS_MAX, LABELS, REASONS

STYLE = """
body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;padding:1rem;color:#1a1a1a;
background:#fafafa}
main{max-width:36rem;margin:0 auto;background:#fff;padding:1.5rem;border:1px solid #ddd;
border-radius:6px}
h1{font-size:1.5rem;margin-top:0}
fieldset{border:1px solid #ccc;border-radius:4px;margin:0 0 1rem;padding:.5rem 1rem}
legend{font-weight:600;padding:0 .25rem}
.choice{display:flex;gap:.6rem;align-items:flex-start;margin:.6rem 0}
.choice input{margin-top:.35rem;width:1.1rem;height:1.1rem}
.choice label{font-weight:600}
.choice p{margin:0;color:#555;font-size:.95rem}
.reason input[type=text]{width:100%;box-sizing:border-box;font-size:1rem;padding:.3rem}
.notice{padding:.6rem .8rem;border-radius:4px;background:#e8f5e9;border:1px solid #a5d6a7}
.problem{background:#fff3e0;border-color:#ffb74d}
button{font-size:1rem;padding:.5rem 1.2rem;border-radius:4px;border:1px solid #1565c0;
background:#1565c0;color:#fff;cursor:pointer}
button:focus,input:focus,a:focus{outline:3px solid #ffb300;outline-offset:2px}
""".strip()
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

# Sent with every page: only our inline style may load; forms post only here;
# no framing; the token in the URL never leaves in a Referer header.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def esc(text: object) -> str:
    """Text made safe for HTML content and quoted attribute values."""
    return escape(str(text), quote=True)


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _paragraphs(text: str) -> str:
    """Text with blank-line breaks as paragraphs (the intro may span lines)."""
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "\n".join(f"<p>{esc(b)}</p>" for b in blocks)


def _notice(text: str | None, *, problem: bool = False) -> str:
    if not text:
        return ""
    kind = "notice problem" if problem else "notice"
    role = "alert" if problem else "status"
    return f'<p class="{kind}" role="{role}">{esc(text)}</p>'


def _recipient(email: str | None, identity: str) -> str:
    return esc(email or identity)


def reason_form(token: str, *, relative: str = "../") -> str:
    """The one optional question after an unsubscribe: why, with a box for "other".

    Posts to ``/r/<token>`` (relative: works behind any path prefix). Nothing
    in it is required; the unsubscribe is already saved when it is shown.
    """
    choices = "\n".join(
        f'<div class="choice"><input type="radio" id="reason-{code}" name="reason" '
        f'value="{code}"><label for="reason-{code}">{esc(LABELS[code])}</label></div>'
        for code in REASONS
    )
    return (
        f'<form method="post" action="{relative}r/{esc(token)}" class="reason">\n'
        "<fieldset>\n<legend>Would you tell us why? (optional)</legend>\n"
        f"{choices}\n"
        '<label for="reason-details">Anything else (optional)</label>\n'
        f'<input type="text" id="reason-details" name="details" maxlength="{DETAILS_MAX}">\n'
        "</fieldset>\n"
        '<button type="submit">Send</button>\n'
        "</form>"
    )


def reason_thanks_page(settings: PageSettings, token: str) -> str:
    """``POST /r/<token>``: the answer is recorded."""
    body = (
        f"<h1>{esc(settings.title)}</h1>\n"
        f"{_notice('Thank you: your answer is recorded.')}\n"
        f"{_preferences_link(token)}"
    )
    return _document(settings.title, body)


def preferences_page(
    page: LandingPage,
    *,
    notice: str | None = None,
    problem: bool = False,
    ask_reason_for: str | None = None,
) -> str:
    """``/p/<token>``: each shown group as a labelled checkbox, and the all-email switch.

    A ticked group box means "subscribed". The all-email box is ticked when
    the person is unsubscribed from all email. The hidden ``shown`` field lists
    the groups this form was made for, so a save can tell when the page has
    changed since (``landing.PageOutdated``). ``ask_reason_for`` (the link's
    token, after a save that unsubscribed) adds the optional question why.
    """
    settings = page.settings
    rows = []
    for group in page.groups:
        box = f"group-{group.id}"
        described = f' aria-describedby="{box}-about"' if group.description else ""
        about = f'<p id="{box}-about">{esc(group.description)}</p>' if group.description else ""
        checked = " checked" if group.subscribed else ""
        rows.append(
            f'<div class="choice"><input type="checkbox" id="{box}" name="group" '
            f'value="{group.id}"{checked}{described}>'
            f'<div><label for="{box}">{esc(group.name)}</label>{about}</div></div>'
        )
    groups_html = (
        "<fieldset>\n<legend>The email you receive</legend>\n" + "\n".join(rows) + "\n</fieldset>"
        if rows
        else ""
    )
    all_checked = " checked" if page.all_email_unsubscribed else ""
    all_note = (
        '<p id="all-email-about">While this is ticked you receive no email from us, '
        "whatever is chosen above.</p>"
    )
    shown = ",".join(str(g.id) for g in page.groups)
    body = (
        f"<h1>{esc(settings.title)}</h1>\n"
        f"{_notice(notice, problem=problem)}\n"
        f"{_paragraphs(settings.intro)}\n"
        f"<p>Preferences for <strong>{_recipient(page.email, page.identity)}</strong></p>\n"
        '<form method="post">\n'
        f"{groups_html}\n"
        "<fieldset>\n<legend>All email</legend>\n"
        '<div class="choice"><input type="checkbox" id="all-email" name="all_email" '
        f'value="unsubscribed"{all_checked} aria-describedby="all-email-about">'
        f'<div><label for="all-email">{esc(settings.all_email_wording)}</label>{all_note}</div>'
        "</div>\n</fieldset>\n"
        f'<input type="hidden" name="shown" value="{esc(shown)}">\n'
        '<button type="submit">Save my choices</button>\n'
        "</form>"
    )
    if ask_reason_for is not None:
        body += "\n" + reason_form(ask_reason_for)
    return _document(settings.title, body)


def _scope_text(scope: UnsubscribeScope) -> str:
    if scope.all_email:
        return "all email from us"
    names = [f"<strong>{esc(name)}</strong>" for name in scope.group_names]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _preferences_link(token: str) -> str:
    # Relative to /u/<token>: works behind any path prefix.
    return f'<p><a href="../p/{esc(token)}">Choose which email you receive</a></p>'


def unsubscribe_confirm_page(view: OneClickView, token: str) -> str:
    """``GET /u/<token>``: asks first (mail scanners open links; a GET changes nothing)."""
    settings = view.settings
    what = _scope_text(view.scope)
    who = _recipient(view.email, view.identity)
    button = esc(settings.all_email_wording) if view.scope.all_email else "Unsubscribe"
    already = (
        _notice(f"{view.email or view.identity} is already unsubscribed from this.")
        if view.already
        else ""
    )
    body = (
        f"<h1>{esc(settings.title)}</h1>\n{already}\n"
        f"<p>Unsubscribe <strong>{who}</strong> from {what}?</p>\n"
        '<form method="post">\n'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
        f'<button type="submit">{button}</button>\n'
        "</form>\n"
        f"{_preferences_link(token)}"
    )
    return _document(settings.title, body)


def unsubscribed_page(settings: PageSettings, scope: UnsubscribeScope, token: str) -> str:
    """``POST /u/<token>``: done (200, no redirect, as RFC 8058 asks)."""
    body = (
        f"<h1>{esc(settings.title)}</h1>\n"
        f"{_notice(settings.confirmation_text)}\n"
        f"<p>You are unsubscribed from {_scope_text(scope)}.</p>\n"
        f"{reason_form(token)}\n"
        f"{_preferences_link(token)}"
    )
    return _document(settings.title, body)


def error_page(heading: str, message: str) -> str:
    """A plain page saying what is wrong; never a traceback."""
    return _document(heading, f"<h1>{esc(heading)}</h1>\n<p>{esc(message)}</p>")

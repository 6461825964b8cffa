"""``/catalogue/enquiry``: the investor's enquiry form, in Polish and English, no account.

A plain HTML form (no script needed to send it), checked on the server: each refused
field is named next to it, in the page's language. A good enquiry is recorded with
status ``new`` by "catalogue form" (:func:`omw_sites.store.enquiries.add`) and the
browser is sent on (303) to a page that shows its public number only.

What the investor writes that may say who they are — e-mail, phone, company or code
name, the message, the sites they looked at — goes into the enquiry's confidential
``contact``; the public code name is "catalogue: <sector>". No response of this module
ever shows those values again: after a refused submission the contact fields come back
empty (the page says so).

Abuse: a hidden honeypot field (``website``) that people leave empty: when filled the
answer looks like a success and nothing is recorded; and a limit per client address
(default 5 enquiries an hour, ``OMW_ENQUIRY_FORM_LIMIT=COUNT/SECONDS``), kept in memory,
answered with a 429 page and ``Retry-After``. Submissions count when they would be
recorded (honeypot hits included), not refused ones, so a person correcting the form is
not locked out. Bodies are limited by the server's request bounds and to 16 KiB here.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import os
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from omw_sites import i18n
from omw_sites.api.catalog import Catalog
from omw_sites.api.pages import language_switch
from omw_sites.api.params import check_params, snapshot
from omw_sites.api.problems import ProblemError
from omw_sites.api.routes.catalogue import profile_title
from omw_sites.scoring.matching import builtin_profiles
from omw_sites.store import Inventory, InventoryError
from omw_sites.store import enquiries as E

router = APIRouter()

BY = "catalogue form"
HONEYPOT = "website"
MAX_BODY = 16 * 1024
MAX_SITES = 10
DEFAULT_LIMIT = (5, 3600)  # enquiries per client address, per seconds
SITE_ID = re.compile(r"^S[0-9A-Za-z]{4,40}$")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[0-9 ()./-]{7,25}$")
NUMBER_ID = re.compile(r"^E[0-9]{4,9}$")
TEXT_LIMITS = {"company": 100, "email": 254, "phone": 25, "message": 1500}
#: numeric fields: (low, high), and the requirement each sets
NUMBERS = {
    "area_min": (0.0, 100_000.0),
    "area_max": (0.0, 100_000.0),
    "max_junction": (0.0, 600.0),
    "max_airport": (0.0, 600.0),
    "power_mw": (0.0, 10_000.0),
}
LIMITS = {  # form field -> (criterion, "min" or "max")
    "area_min": ("area_ha", "min"),
    "area_max": ("area_ha", "max"),
    "max_junction": ("time_junction_min", "max"),
    "max_airport": ("time_airport_min", "max"),
    "power_mw": ("power_capacity_mw", "min"),
}
FIELDS = (
    "company",
    "sector",
    *NUMBERS,
    "deadline",
    "email",
    "phone",
    "message",
    "consent",
    "sites",
    "lang",
    HONEYPOT,
)
PRIVATE_FIELDS = ("company", "email", "phone", "message")  # never shown again
Message = tuple[str, dict[str, Any]]  # a catalogue message id and its values


# ------------------------------------------------------------------------ the limit
class RateLimit:
    """At most ``count`` submissions per client address in any ``seconds``, in memory."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count, self.seconds = count, seconds
        self._hits: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str, now: float | None = None) -> int:
        """Seconds ``client`` must wait before its next submission (0: it may send)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(client)
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if not hits:
                self._hits.pop(client, None)
                return 0
            if len(hits) < self.count:
                return 0
            return max(1, math.ceil(hits[0] + self.seconds - now))

    def hit(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._hits.setdefault(client, collections.deque()).append(now)
            if len(self._hits) > 100_000:  # bounded memory: forget the oldest addresses
                for key in list(self._hits)[:10_000]:
                    del self._hits[key]


def limit_from_env() -> tuple[int, int]:
    """``OMW_ENQUIRY_FORM_LIMIT`` (``COUNT/SECONDS``), else 5 an hour."""
    text = os.environ.get("OMW_ENQUIRY_FORM_LIMIT", "").strip()
    if not text:
        return DEFAULT_LIMIT
    count, _, seconds = text.partition("/")
    try:
        pair = int(count), int(seconds)
    except ValueError:
        pair = (0, 0)
    if pair[0] < 1 or pair[1] < 1:
        msg = f"OMW_ENQUIRY_FORM_LIMIT={text!r}: write COUNT/SECONDS, e.g. 5/3600"
        raise ValueError(msg)
    return pair


def _limiter(request: Request) -> RateLimit:
    state = request.app.state
    limiter = getattr(state, "enquiry_form_limit", None)
    if limiter is None:
        limiter = state.enquiry_form_limit = RateLimit(*limit_from_env())
    return limiter


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --------------------------------------------------------------------- the checks
def _number(text: str, low: float, high: float) -> tuple[float | None, Message | None]:
    if not text.strip():
        return None, None
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None, ("Enter a number.", {})
    if not (math.isfinite(value) and low <= value <= high):
        return None, ("Enter a number from %(low)s to %(high)s.", {"low": low, "high": high})
    return value, None


def _deadline(text: str, today: dt.date) -> tuple[str | None, Message | None]:
    if not text.strip():
        return None, None
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return None, ("Enter a date as YYYY-MM-DD.", {})
    if day < today:
        return None, ("The deadline has passed: give a later date.", {})
    if day > today + dt.timedelta(days=731):
        return None, ("Give a deadline within two years.", {})
    return day.isoformat(), None


def _sites(text: str) -> tuple[list[str], Message | None]:
    ids = list(dict.fromkeys(p.strip() for p in text.replace(";", ",").split(",") if p.strip()))
    if len(ids) > MAX_SITES or not all(SITE_ID.match(i) for i in ids):
        return [], ("List at most %(n)s site IDs (S…), separated by commas.", {"n": MAX_SITES})
    return ids, None


def _contact_errors(form: dict[str, str]) -> dict[str, Message]:
    errors: dict[str, Message] = {}
    email, phone = form["email"].strip(), form["phone"].strip()
    if not email and not phone:
        errors["email"] = ("Give an e-mail address or a phone number.", {})
    if email and not EMAIL.match(email):
        errors["email"] = ("This is not an e-mail address (name@example.com).", {})
    if phone and (not PHONE.match(phone) or sum(c.isdigit() for c in phone) < 7):
        errors["phone"] = ("This is not a phone number (at least 7 digits).", {})
    return errors


def check_form(
    form: dict[str, str], sectors: list[str], today: dt.date
) -> tuple[dict[str, Any], dict[str, Message]]:
    """The form's values checked: (the enquiry's fields, errors by form field)."""
    errors = _contact_errors(form)
    for name, most in TEXT_LIMITS.items():
        if len(form[name]) > most:
            errors[name] = ("At most %(n)s characters.", {"n": most})
    if form["sector"] not in sectors:
        errors["sector"] = ("Choose the kind of investment.", {})
    numbers: dict[str, float | None] = {}
    for name, (lowest, highest) in NUMBERS.items():
        numbers[name], err = _number(form[name], lowest, highest)
        if err:
            errors[name] = err
    smallest, largest = numbers["area_min"], numbers["area_max"]
    if smallest is not None and largest is not None and smallest > largest:
        errors["area_max"] = ("The largest area is below the smallest.", {})
    deadline, err = _deadline(form["deadline"], today)
    if err:
        errors["deadline"] = err
    sites, err = _sites(form["sites"])
    if err:
        errors["sites"] = err
    if form["consent"] not in ("1", "on", "yes"):
        errors["consent"] = ("Without your consent we cannot answer the enquiry.", {})
    return {"numbers": numbers, "deadline": deadline, "sites": sites}, errors


def enquiry_document(form: dict[str, str], checked: dict[str, Any], lang: str) -> dict[str, Any]:
    """The enquiry the store records: requirements from the numbers, the sector's profile
    as the preferences, everything identifying in the confidential contact."""
    limits: dict[str, dict[str, float]] = {}
    for name, value in checked["numbers"].items():
        if value is not None:
            column, bound = LIMITS[name]
            limits.setdefault(column, {})[bound] = value
    lines = [
        ("e-mail", form["email"].strip()),
        ("phone", form["phone"].strip()),
        ("company or code name", form["company"].strip()),
        ("sites of interest", ", ".join(checked["sites"])),
        ("language", lang),
        ("message", form["message"].strip()),
    ]
    return {
        "code_name": f"catalogue: {form['sector']}",
        "sector": form["sector"],
        "deadline": checked["deadline"],
        "contact": "\n".join(f"{k}: {v}" for k, v in lines if v),
        "requirements": {"limits": limits} if limits else {},
        "preferences": {"profile": form["sector"]},
    }


# ------------------------------------------------------------------------- pages
def _render(
    request: Request, template: str, lang: str, status: int = 200, **context: Any
) -> Response:
    env = i18n.environment("omw_sites.api", "templates", lang)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    page = env.get_template(template).render(
        lang=lang,
        static=str(request.url_for("static", path="")),
        home=str(request.url_for("landing")) + "?f=html",
        catalogue=str(request.url_for("catalogue")) + f"?lang={lang}",
        form_url=str(request.url_for("enquiry_form")),
        **{**language_switch(request, lang), "other_lang_href": _other(params, lang)},
        **context,
    )
    headers = {
        "Vary": "Accept-Language",
        "Content-Language": lang,
        "Cache-Control": "no-store",
        **context.get("headers", {}),
    }
    return HTMLResponse(page, status_code=status, headers=headers)


def _other(params: list[tuple[str, str]], lang: str) -> str:
    return "?" + urlencode([*params, ("lang", "en" if lang == "pl" else "pl")])


def _sectors(snap: Any, lang: str) -> list[tuple[str, str]]:
    known = set(builtin_profiles())
    return [
        (p.name, profile_title(p.name, p.title, lang))
        for p in snap.profiles.values()
        if p.name in known
    ]


def _language(request: Request, form_lang: str | None = None) -> str:
    return i18n.negotiate(
        form_lang or request.query_params.get("lang"), request.headers.get("accept-language")
    )


def _form_page(
    request: Request,
    lang: str,
    sectors: list[tuple[str, str]],
    form: dict[str, str],
    errors: dict[str, Message] | None = None,
    status: int = 200,
) -> Response:
    words = {
        k: i18n.gettext(lang, msg, **{n: i18n.format_number(v, lang, 2) for n, v in vals.items()})
        for k, (msg, vals) in (errors or {}).items()
    }
    shown = {k: ("" if k in PRIVATE_FIELDS else v) for k, v in form.items()}
    return _render(
        request,
        "enquiry_form.html",
        lang,
        status,
        title=i18n.gettext(lang, "Send an enquiry"),
        form=shown,
        errors=words,
        sectors=sectors,
        private_cleared=bool(errors) and any(form.get(k) for k in PRIVATE_FIELDS),
        today=dt.date.today().isoformat(),
    )


@router.get(
    "/catalogue/enquiry",
    name="enquiry_form",
    summary="The investor's enquiry form (HTML, Polish or English)",
    include_in_schema=False,  # a page of the catalogue, not a resource of the API
    response_class=HTMLResponse,
)
async def enquiry_form(request: Request) -> Response:
    check_params(request, frozenset({"lang", "sites"}))
    lang = _language(request)
    snap = await snapshot(request)
    sectors = _sectors(snap, lang)
    form = dict.fromkeys(FIELDS, "")
    ids, _ = _sites(request.query_params.get("sites", "")[:1000])
    form.update(sites=", ".join(ids), sector=sectors[0][0] if sectors else "")
    return _form_page(request, lang, sectors, form)


async def _read_form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise ProblemError(415, "send the form as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ProblemError(413, "the form is larger than %(n)s bytes", n=MAX_BODY)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProblemError(400, "the form cannot be read: %(e)s", e=str(exc)) from exc
    form = dict.fromkeys(FIELDS, "")
    for key, value in pairs:
        if key in form:
            form[key] = value
    return form


@router.post(
    "/catalogue/enquiry",
    name="send_enquiry",
    summary="Send the investor's enquiry form",
    include_in_schema=False,
    response_class=HTMLResponse,
)
async def send_enquiry(request: Request) -> Response:
    check_params(request, frozenset({"lang"}))
    form = await _read_form(request)
    lang = _language(request, form["lang"])
    limiter, client = _limiter(request), _client(request)
    wait = limiter.wait(client)
    if wait:
        minutes = max(1, math.ceil(wait / 60))
        return _render(
            request, "enquiry_wait.html", lang, 429,
            title=i18n.gettext(lang, "Too many enquiries"), minutes=minutes,
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    sent = str(request.url_for("enquiry_sent"))
    if form[HONEYPOT].strip():  # a robot filled the field people do not see
        limiter.hit(client)
        return RedirectResponse(f"{sent}?lang={lang}", status_code=303)
    snap = await snapshot(request)
    sectors = _sectors(snap, lang)
    checked, errors = check_form(form, [s for s, _ in sectors], dt.date.today())
    if errors:
        return _form_page(request, lang, sectors, form, errors, status=422)
    doc = enquiry_document(form, checked, lang)
    catalog: Catalog = request.app.state.catalog
    inv = Inventory(catalog.backend)
    limiter.hit(client)
    try:
        rec = await anyio.to_thread.run_sync(lambda: E.add(inv, doc, BY))
    except InventoryError as exc:  # no sites in the store yet, or a rule of the store
        raise ProblemError(exc.status, str(exc)) from exc
    query = urlencode({"number": rec["enquiry_id"], "lang": lang})
    return RedirectResponse(f"{sent}?{query}", status_code=303)


@router.get(
    "/catalogue/enquiry/sent",
    name="enquiry_sent",
    summary="The enquiry was received (HTML)",
    include_in_schema=False,
    response_class=HTMLResponse,
)
async def enquiry_sent(request: Request) -> Response:
    check_params(request, frozenset({"lang", "number"}))
    lang = _language(request)
    number = request.query_params.get("number", "")
    return _render(
        request,
        "enquiry_sent.html",
        lang,
        title=i18n.gettext(lang, "Enquiry received"),
        number=number if NUMBER_ID.match(number) else "",
    )


__all__ = ["router", "RateLimit", "check_form", "enquiry_document"]

"""Public circle pages, members and invitations."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from fundcircle.auth.forms import EmptyForm
from fundcircle.auth.permissions import current_user, require, require_user
from fundcircle.auth.second_factor import require_second_factor
from fundcircle.circles import operations, permissions, queries
from fundcircle.circles.forms import InviteForm
from fundcircle.db import utcnow
from fundcircle.errors import FundcircleError, ValidationError
from fundcircle.extensions import db
from fundcircle.rounds import queries as round_queries


def home():  # type: ignore[no-untyped-def]
    circles = queries.all_circles(db.session)
    now = utcnow()
    open_calls = round_queries.open_calls(db.session, now)
    return render_template("circles/home.html", circles=circles, open_calls=open_calls, now=now)


def circle_page(slug: str):  # type: ignore[no-untyped-def]
    # public page: validators, 304 and shared anonymous renders from transparency.caching
    from fundcircle.transparency.views import public_page

    return public_page("circle", slug, None, [], lambda: _render_circle_page(slug))


def _render_circle_page(slug: str) -> tuple[str, int]:
    from fundcircle.transparency import queries as public_queries

    circle = public_queries.circle_or_404(db.session, slug)  # without the member list
    user = current_user()
    rounds = round_queries.visible_rounds(db.session, circle, user)
    now = utcnow()
    overview = public_queries.circle_overview(db.session, circle, rounds, now)
    return render_template(
        "circles/circle.html", circle=circle, rounds=rounds, now=now, overview=overview,
        member_count=overview.member_count,
        membership=permissions.membership(user, circle),
        is_facilitator=permissions.is_facilitator(user, circle),
    ), 200


def _base_url() -> str:
    return current_app.config.get("BASE_URL") or request.host_url


def members(slug: str):  # type: ignore[no-untyped-def]
    circle = queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    require(permissions.is_member(user, circle), "Only members can see the member list.")
    form = InviteForm()
    status = 200
    if request.method == "POST":
        require(permissions.is_facilitator(user, circle), "Only facilitators can invite members.")
        require_second_factor()  # reading the list does not need it; inviting does
        if form.validate_on_submit():
            try:
                operations.invite(db.session, circle=circle, actor=user, email=form.email.data,
                                  as_facilitator=form.as_facilitator.data, as_treasurer=form.as_treasurer.data,
                                  message=form.message.data or "", now=utcnow(), base_url=_base_url(),
                                  lifetime=current_app.config["INVITATION_LIFETIME"])
            except ValidationError as err:
                for field, messages in err.field_errors.items():
                    getattr(form, field).errors.extend(messages)
                status = 422
            else:
                flash(f"Invitation sent to {form.email.data}.", "success")
                return redirect(url_for("circles.members", slug=slug))
        else:
            status = 422
    return render_template(
        "circles/members.html", circle=circle, form=form, members=queries.members(db.session, circle),
        invitations=queries.open_invitations(db.session, circle),
        is_facilitator=permissions.is_facilitator(user, circle), revoke_form=EmptyForm(),
    ), status


def revoke_invitation(slug: str, invitation_id: int):  # type: ignore[no-untyped-def]
    circle = queries.circle_by_slug_or_404(db.session, slug)
    user = require_user()
    require(permissions.is_facilitator(user, circle), "Only facilitators can revoke invitations.")
    require_second_factor()
    if EmptyForm().validate_on_submit():
        operations.revoke_invitation(db.session, circle=circle, actor=user, invitation_id=invitation_id,
                                     now=utcnow())
        flash("Invitation revoked.", "success")
    return redirect(url_for("circles.members", slug=slug))


def invitation(token: str):  # type: ignore[no-untyped-def]
    inv = operations.invitation_by_token(db.session, token)
    user = current_user()
    form = EmptyForm()
    if request.method == "POST":
        user = require_user()
        if not form.validate_on_submit():
            return render_template("circles/invitation.html", invitation=inv, token=token, form=form), 400
        try:
            operations.accept_invitation(db.session, token=token, user=user, now=utcnow())
        except FundcircleError as err:
            return render_template("circles/invitation.html", invitation=inv, token=token, form=form,
                                   error=err.user_message), err.http_status
        flash(f"Welcome to {inv.circle.name}!", "success")
        return redirect(url_for("circles.circle_page", slug=inv.circle.slug))
    return render_template("circles/invitation.html", invitation=inv, token=token, form=form, user=user)

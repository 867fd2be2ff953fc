"""The fake Open Collective's pages that fundcircle links to: an expense's own page (where the
"Open Collective expense …" links point), its admin buttons returning to it, and a persisted fake
keeping its address across restarts so links stored earlier keep working."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fundcircle.integrations.fakes.opencollective import FakeOpenCollective


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):  # type: ignore[no-untyped-def]
        return None


def _expense(fake: FakeOpenCollective) -> dict:  # type: ignore[type-arg]
    fake.add_account("riverside-commons", name="Riverside Commons Fund")
    with fake.lock:
        fake.state["expenses"].append({
            "id": "e1", "publicId": "ex_test1", "legacyId": 5000, "status": "PENDING", "account": "riverside-commons",
            "description": "Grant: Street piano", "payee": "piano-people", "amount_cents": 450_00, "currency": "EUR",
            "createdAt": "2026-11-21T10:00:00Z", "customData": {}, "reference": "r"})
        fake.save()
    return fake.find_expense("ex_test1")


def test_expense_page_by_legacy_or_public_id_and_404s(tmp_path: Path) -> None:
    with FakeOpenCollective(state_path=tmp_path / "oc.json") as fake:
        _expense(fake)
        for ref in ("5000", "ex_test1"):
            with urllib.request.urlopen(f"{fake.url}/riverside-commons/expenses/{ref}") as response:
                page = response.read().decode()
            assert "Grant: Street piano" in page and 'data-status="PENDING"' in page and "450 EUR" in page
            assert 'name="back" value="/riverside-commons/expenses/5000"' in page
        for path in ("/riverside-commons/expenses/9999", "/another-collective/expenses/5000"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(fake.url + path)
            err.value.close()
            assert err.value.code == 404


@pytest.mark.parametrize(("back", "location"), [
    ("/riverside-commons/expenses/5000", "/riverside-commons/expenses/5000"),
    ("//evil.example/", "/"),
    ("https://evil.example/", "/"),
    ("", "/"),
])
def test_admin_action_returns_to_a_local_page_only(tmp_path: Path, back: str, location: str) -> None:
    with FakeOpenCollective(state_path=tmp_path / "oc.json") as fake:
        _expense(fake)
        opener = urllib.request.build_opener(_NoRedirect)
        body = urllib.parse.urlencode({"back": back}).encode()
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(f"{fake.url}/__fake__/expenses/ex_test1/approve", data=body)
        err.value.close()
        assert err.value.code == 303 and err.value.headers["Location"] == location
        assert fake.find_expense("ex_test1")["status"] == "APPROVED"


def test_a_persisted_fake_comes_back_on_its_port(tmp_path: Path) -> None:
    state = tmp_path / "oc.json"
    with FakeOpenCollective(state_path=state) as first:
        _expense(first)
        url = first.url
    with FakeOpenCollective(state_path=state) as again:
        assert again.url == url
        with urllib.request.urlopen(f"{url}/riverside-commons/expenses/5000") as response:
            assert response.status == 200
    # the remembered port is taken: a free one, not a failure
    with FakeOpenCollective(state_path=state) as holder, FakeOpenCollective(state_path=state) as other:
        assert holder.url == url and other.url != url

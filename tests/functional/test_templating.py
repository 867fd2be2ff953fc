"""Template filters that depend on the app's configuration."""

from __future__ import annotations

from typing import Any

from fundcircle.templating import oc_link


def test_oc_links_follow_the_configured_site_not_the_stored_host(app: Any) -> None:
    # the demo's fake OC listens on a new port at every start; a deployment may switch to the real OC
    stored = "http://127.0.0.1:41234/riverside-commons/expenses/12"
    with app.app_context():
        app.config["OPENCOLLECTIVE_WEBSITE_URL"] = "http://127.0.0.1:50001/"
        assert oc_link(stored) == "http://127.0.0.1:50001/riverside-commons/expenses/12"
        app.config["OPENCOLLECTIVE_WEBSITE_URL"] = "https://opencollective.com"
        assert oc_link(stored) == "https://opencollective.com/riverside-commons/expenses/12"
        assert oc_link("") == "" and oc_link(None) == ""
        assert oc_link("not a url") == ""  # no path to keep: no link rather than a broken one

"""The web console in a real headless Chromium: every page, live changes, edit, rollback, login."""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys

from .page import PHONE, Console, http


def test_services_page_lists_services_filters_and_updates_live(console: Console, svc: str) -> None:
    console.post(f"{svc}-api", {"a": 1}, reason="first api config")
    console.post(f"{svc}-web", {"b": 1}, reason="first <b>web</b> config")
    console.open("/")
    row = f'tr[data-service="{svc}-api"]'
    console.wait_text(row, "first api config")
    assert "v1" in console.text(row) and "dev" in console.text(row)
    console.type("#filter", f"{svc}-we")
    console.wait(lambda: not console.all(row), "the filter to hide the other service")
    assert "first <b>web</b> config" in console.text(f'tr[data-service="{svc}-web"]')  # text, not HTML
    console.type("#filter", svc)
    console.post(f"{svc}-api", {"a": 2}, reason="bigger batches")
    console.wait_text(row, "bigger batches")  # no reload: the list follows the ledger
    assert "v2" in console.text(row)
    console.shot("services")


def test_service_page_shows_a_change_posted_elsewhere_live(console: Console, svc: str) -> None:
    console.post(svc, {"operational": {"batch_size": 100, "retries": 3}}, reason="initial")
    console.open(f"/s/{svc}")
    console.wait_text("#document", "batch_size")
    console.wait_text("#live", "live")
    console.wait_text("#timeline", "initial")
    console.js("window.__sameDocument = true")
    console.post(svc, {"operational": {"batch_size": 200, "retries": 3}}, reason="backfill")
    console.wait_text('#timeline li[data-version="2"]', "backfill")  # pushed over the SSE watch
    console.wait_text("#document", "200")
    assert console.text("#version") == "v2"
    assert console.js("return window.__sameDocument === true"), "the page reloaded"
    console.shot("service")


def test_diff_between_two_versions_inline_and_side_by_side(console: Console, svc: str) -> None:
    console.post(svc, {"a": 1, "gone": True, "keep": "x"})
    console.post(svc, {"a": 2, "new": [1, 2], "keep": "x"})
    console.open(f"/s/{svc}")
    console.click("a.button[href^='#/diff/']")
    console.type("#diff-from", "1")
    console.type("#diff-to", "2")
    console.click("#compare")
    console.wait_text("#diff-summary", "1 changed, 1 added, 1 removed")
    inline = console.text("#diff-result")
    assert "/a" in inline and "1 → 2" in inline and "/new" in inline and "/gone" in inline
    assert "/keep" not in inline
    console.click("input[value=side]")
    console.wait(lambda: console.all("#diff-result table.side"), "the side-by-side table")
    row = console.text("#diff-result tr.changed")
    assert "/a" in row and "1" in row and "2" in row
    console.shot("diff")


def test_time_slider_shows_the_older_document(console: Console, svc: str) -> None:
    for n in (1, 2, 3):
        console.post(svc, {"level": f"level-{n}"}, reason=f"step {n}")
    console.open(f"/s/{svc}")
    console.wait_text("#document", "level-3")
    slider = console.find("#travel")
    slider.send_keys(Keys.HOME)  # keyboard: the first version
    console.wait_text("#document", "level-1")
    assert "v1 of 3" in console.text("#travel-label")
    assert "not the current version" in console.text("#doc-note")
    slider.send_keys(Keys.ARROW_RIGHT)
    console.wait_text("#document", "level-2")
    console.shot("time-travel")


def test_fleet_snapshot_at_an_instant(console: Console, svc: str) -> None:
    console.post(svc, {"mode": "old"})
    _, v1 = http("GET", f"{console.base}/api/v1/config/{svc}?version=1")
    console.post(svc, {"mode": "new"})
    console.open(f"/fleet?at={v1['stored_at']}")
    row = f'#fleet-result tr[data-service="{svc}"]'
    console.wait_text(row, "v1")
    console.find(f"{row} summary").click()
    console.wait_text(row, "old")
    console.click("#fleet-now")
    console.wait_text(row, "v2")
    console.shot("fleet")


def test_edit_validates_and_a_stale_version_is_shown_as_a_conflict(console: Console, svc: str) -> None:
    console.post(svc, {"workers": 2})
    console.open(f"/s/{svc}")
    console.wait_text("#version", "v1")
    console.click("#edit")
    console.type("#edit-doc", '{"workers": ')
    console.type("#edit-reason", "more workers")
    console.click("#save")
    console.wait_text("#edit-error", "Not valid JSON")
    console.expect_error("422 (Unprocessable")
    console.type("#edit-doc", '{"workers": 4, "db": {"password": "hunter2"}}')
    console.click("#save")
    console.wait_text("#edit-error", "secret")  # the API's rule, next to the field
    assert console.find("#edit-doc").get_attribute("aria-invalid") == "true"
    console.post(svc, {"workers": 3}, reason="someone else")  # the page showed v1
    console.wait_text("#version", "v2")
    console.expect_error("409 (Conflict)")
    console.type("#edit-doc", '{"workers": 4}')
    console.click("#save")
    console.wait_text("#conflict", "now at version 2")
    console.wait_text("#conflict", "/workers")  # what the other change did
    console.shot("edit-conflict")
    console.click("#conflict button:nth-of-type(2)")  # keep my edit, save over v2
    console.click("#save")
    console.wait_text("#version", "v3")
    _, now = http("GET", f"{console.base}/api/v1/config/{svc}")
    assert now["config"] == {"workers": 4} and now["reason"] == "more workers"


def test_roll_back_from_the_timeline_with_confirmation(console: Console, svc: str) -> None:
    console.post(svc, {"flag": "good"}, reason="good")
    console.post(svc, {"flag": "bad"}, reason="bad")
    console.open(f"/s/{svc}")
    console.wait_text("#version", "v2")
    console.click('button[data-rollback="1"]')
    console.wait_text("#rollback-dialog", '"good"')  # the diff it would apply
    console.click("#rollback-confirm")
    console.wait_text("#rollback-error", "reason is required")
    console.type("#rollback-reason", "bad flag")
    console.shot("rollback")
    console.click("#rollback-confirm")
    console.wait_text("#version", "v3")
    console.wait_text('#timeline li[data-version="3"]', "rolled_back")
    console.wait_text("#document", "good")
    assert not console.all("#rollback-dialog")


def test_verify_runs_the_chain_check(console: Console, svc: str) -> None:
    for n in range(3):
        console.post(svc, {"n": n})
    console.open(f"/s/{svc}")
    console.click("#verify")
    console.wait_text("#verify-result", "Chain intact: 3 events, versions 1–3")


def test_login_with_a_token_and_a_wrong_token_is_refused(console: Console, console_api_auth, svc: str) -> None:
    from tests.api.helpers import ADMIN, TOKENS

    http("POST", f"{console_api_auth.url}/api/v1/config/{svc}", {"x": 1}, ADMIN)
    console.expect_error("401 (Unauthorized)")
    console.driver.get(f"{console_api_auth.url}/#/")
    console.wait(lambda: console.all("#login #token"), "the login form")
    console.type("#token", "not-a-valid-token-at-all")
    console.find("#token").send_keys(Keys.ENTER)
    console.wait_text("#login", "Token refused: invalid bearer token")
    console.shot("login")
    console.type("#token", TOKENS["admin"])
    console.find("#token").send_keys(Keys.ENTER)
    console.wait_text(f'tr[data-service="{svc}"]', "v1")
    assert console.js("return sessionStorage.getItem('config-ledger.token')") == TOKENS["admin"]
    console.click("#sign-out")
    console.wait(lambda: console.all("#login #token"), "the login form after signing out")
    assert console.js("return sessionStorage.getItem('config-ledger.token')") is None


def test_phone_width_and_keyboard_only(console: Console, svc: str) -> None:
    console.post(svc, {"nested": {"deep": {"value": "a long string value to wrap " * 3}}}, reason="r" * 80)
    console.driver.set_window_size(*PHONE)
    console.open("/")
    console.wait(lambda: console.all(f'tr[data-service="{svc}"]'), "the service row")
    console.type("#filter", svc)
    assert not console.overflow(), f"the services page scrolls sideways on a phone: {console.overflow()}"
    console.shot("phone-services")
    # keyboard only: Tab from the filter box to the service's link, Enter opens it
    link = console.find(f'tr[data-service="{svc}"] a')
    for _ in range(10):
        if console.js("return document.activeElement") == link:
            break
        console.driver.switch_to.active_element.send_keys(Keys.TAB)
    assert console.js("return document.activeElement") == link, "the service link is not reachable by Tab"
    link.send_keys(Keys.ENTER)
    console.wait_text("#document", "deep")
    assert not console.overflow(), f"the service page scrolls sideways on a phone: {console.overflow()}"
    console.shot("phone-service")

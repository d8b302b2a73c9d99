#!/usr/bin/env python3
"""Browser tests of Herald's console: a real headless Chromium (Debian's package) driven by
Playwright, against a real worker, database and receiver that ConsoleBrowserTests.swift set up.

Environment: HERALD_CONSOLE_URL, HERALD_CONSOLE_TOKEN, HERALD_RECEIVER_URL,
HERALD_FAILED_EVENT (payload UUID of order 1's failed order_changes event),
HERALD_SCRIPT_ORDER (order id whose note is a <script>), HERALD_SCREENSHOTS (directory),
HERALD_LITERAL_SECRET (a configured header value that must never appear).
Exits non-zero with the failed check's message.
"""
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

BASE = os.environ["HERALD_CONSOLE_URL"]
TOKEN = os.environ["HERALD_CONSOLE_TOKEN"]
RECEIVER = os.environ["HERALD_RECEIVER_URL"]
FAILED_EVENT = os.environ["HERALD_FAILED_EVENT"]
SCRIPT_ORDER = os.environ["HERALD_SCRIPT_ORDER"]
SHOTS = os.environ.get("HERALD_SCREENSHOTS", "")
LITERAL_SECRET = os.environ["HERALD_LITERAL_SECRET"]

checks = []


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    checks.append(message)


def rows(page):
    return page.locator("#events tbody tr")


def submit(page, selector):
    """Clicks something that loads a new page and waits for it."""
    with page.expect_navigation():
        page.click(selector)


def wait_for(predicate, timeout=20.0, message="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + message)


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        console_errors = []
        page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

        # Without the token: every page ends on the login form and shows no data; every action is refused.
        for path in ["/console", "/console/events?status=failed", "/console/events/" + FAILED_EVENT,
                     "/console/redeliver?status=failed"]:
            page.goto(BASE + path)
            check("/console/login" in page.url, "anonymous %s is sent to the login page" % path)
            check(page.locator("#token").count() == 1, "login form shown for %s" % path)
            check("order_changes" not in page.content(), "no data leaks on the login page for %s" % path)
        for path in ["/console/events/%s/redeliver" % FAILED_EVENT, "/console/redeliver", "/console/logout"]:
            response = page.request.post(BASE + path, form={"status": "failed", "expected": "1"}, max_redirects=0)
            check(response.status == 401, "anonymous POST %s refused (got %d)" % (path, response.status))

        # Log in: a wrong token is refused, the right one sets an HttpOnly SameSite=Strict cookie.
        page.goto(BASE + "/console")
        page.fill("#token", "not-the-token")
        submit(page, "button[type=submit]")
        check(page.locator(".error").count() == 1, "wrong token shows an error")
        page.fill("#token", TOKEN)
        submit(page, "button[type=submit]")
        check(page.url == BASE + "/console", "login lands on the overview (at %s)" % page.url)
        cookies = [c for c in context.cookies() if c["name"] == "herald_console"]
        check(len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict",
              "session cookie is HttpOnly and SameSite=Strict")
        check(TOKEN not in cookies[0]["value"], "the cookie does not hold the token")

        # Overview counts for the seeded database.
        def count(trigger, column):
            return page.locator('tr[data-trigger="%s"] td[data-count="%s"]' % (trigger, column)).inner_text().strip()

        check(count("order_changes", "failed") == "6", "overview: 6 failed order_changes events")
        check(count("order_changes", "delivered") == "0", "overview: 0 delivered order_changes events")
        check(count("order_audit", "delivered") == "6", "overview: 6 delivered order_audit events")
        check(count("order_audit", "failed") == "0", "overview: 0 failed order_audit events")
        check(count("legacy_hook", "pending") == "2", "overview: 2 pending events of an unconfigured trigger")
        check(int(count("order_changes", "failures_last_hour")) == 6, "overview: 6 failures in the last hour")
        check(page.locator('tr[data-trigger="order_audit"] svg.spark rect').count() >= 2, "throughput chart drawn")
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "overview.png"), full_page=True)

        # Filter by status through the form.
        submit(page, "header a[href='/console/events']")
        page.select_option("select[name=status]", "failed")
        submit(page, "form.filters button[type=submit]")
        check("status=failed" in page.url, "the filter is in the URL (%s)" % page.url)
        statuses = rows(page).locator("td:nth-child(4)").all_inner_texts()
        check(len(statuses) == 6 and all(s.strip() == "failed" for s in statuses),
              "status filter shows the 6 failed events only (got %r)" % statuses)

        # Filter by payload containment.
        page.select_option("select[name=status]", "")
        page.fill("input[name=q]", '{"data":{"new":{"customer":"acme"}}}')
        submit(page, "form.filters button[type=submit]")
        triggers = sorted(rows(page).locator("td:nth-child(2)").all_inner_texts())
        check(triggers == ["order_audit"] * 3 + ["order_changes"] * 3,
              "containment filter finds acme's 3 orders under both triggers (got %r)" % triggers)

        # Find a failed event by its order id, open it and see its attempts.
        page.goto(BASE + "/console/events?trigger=order_changes&q=1")
        check(rows(page).count() == 1, "order id 1 finds one order_changes event")
        with page.expect_navigation():
            rows(page).first.locator("a").first.click()
        check(page.url == BASE + "/console/events/" + FAILED_EVENT, "the row links to the event's stable URL")
        check("failed" in page.locator("#status").inner_text(), "event page shows failed")
        attempts = page.locator("section.attempt")
        check(attempts.count() == 1, "one attempt listed")
        check("HTTP 500" in attempts.first.inner_text(), "the attempt shows HTTP 500")
        check("attempt 1" in attempts.first.locator("pre.response").inner_text(), "the stored response body is shown")
        check("<redacted>" in attempts.first.locator("table.headers").inner_text(), "Authorization shown redacted")
        check(LITERAL_SECRET not in page.content(), "the literal Authorization value never reaches the page")
        payload = json.loads(page.locator("#payload").inner_text())
        check(payload["id"] == FAILED_EVENT and payload["event"]["data"]["new"]["id"] == 1,
              "payload as delivered, with its webhook id")
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "event.png"), full_page=True)

        # A POST without (or with a wrong) CSRF token is refused, even with the session cookie.
        for form in [{}, {"csrf": "forged"}]:
            response = page.request.post(BASE + "/console/events/%s/redeliver" % FAILED_EVENT, form=form, max_redirects=0)
            check(response.status == 403, "POST with cookie but csrf=%r refused (got %d)" % (form, response.status))

        # Redeliver: the real receiver gets it again and the event turns delivered.
        submit(page, "#redeliver")
        check(page.url.endswith("/console/events/%s?notice=redelivered" % FAILED_EVENT), "back on the event page")
        check(page.locator(".notice").count() == 1, "redelivery notice shown")

        def delivered():
            page.reload()
            return "delivered" in page.locator("#status").inner_text()

        wait_for(delivered, message="the redelivered event to be delivered")
        check(page.locator("section.attempt").count() == 2, "the second attempt is listed")
        received = page.request.get(RECEIVER + "/_requests").json()
        ids = [r["headers"].get("webhook-id") for r in received if r["path"] == "/flaky/1"]
        check(ids.count(FAILED_EVENT) == 2, "the receiver got the event twice with the same webhook-id")

        # A payload with <script> renders as text and runs nothing.
        page.goto(BASE + "/console/events?trigger=order_changes&q=" + SCRIPT_ORDER)
        with page.expect_navigation():
            rows(page).first.locator("a").first.click()
        shown = page.locator("#payload").inner_text()
        check("<script>alert(" in shown and json.loads(shown)["event"]["data"]["new"]["note"] == '<script>alert("xss")</script>',
              "the script is shown as text")
        check(page.locator("main script").count() == 0, "no script element in the page")
        page.wait_for_timeout(300)
        check(dialogs == [], "no dialog opened (got %r)" % dialogs)

        # Bulk redelivery of the failed events matching a filter, with a count and a confirmation.
        page.goto(BASE + "/console/events?trigger=order_changes&status=failed")
        submit(page, "#bulk-redeliver")
        count_text = page.locator("#confirm-count").get_attribute("data-count")
        check(count_text == "5", "confirmation counts the 5 remaining failed events (got %s)" % count_text)
        submit(page, "#confirm")
        check("notice=bulk" in page.url, "back on the list after the bulk redelivery")
        check("Queued 5" in page.locator(".notice").inner_text(), "bulk notice names the count")

        # Log out: the cookie stops working.
        page.goto(BASE + "/console")
        submit(page, "header button")
        page.goto(BASE + "/console/events")
        check("/console/login" in page.url, "after logout the console asks to log in again")
        check(console_errors == [] or all("Content Security Policy" not in e for e in console_errors),
              "no CSP violations (got %r)" % console_errors)
        browser.close()
    print("browser checks passed: %d" % len(checks))
    for message in checks:
        print("  ok  " + message)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print("browser check failed: %s" % error, file=sys.stderr)
        print("passed before it: %d" % len(checks), file=sys.stderr)
        sys.exit(1)

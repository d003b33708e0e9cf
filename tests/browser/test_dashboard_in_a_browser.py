"""A developer's first minutes, in a real browser: sign up, take the key, roll it, hear a job."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import settle
from tests.conftest import wav_bytes

pytestmark = pytest.mark.browser

PASSWORD = "a long passphrase 42"


def api_status(base_url: str, secret: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/v1/jobs", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


# The policy forbids eval, so waits are promises or selectors, never wait_for_function strings.
PLAYED = """() => new Promise((resolve) => {
  const audio = document.querySelector("audio");
  if (audio.currentTime > 0) resolve();
  else audio.addEventListener("timeupdate", resolve, { once: true });
})"""


def all_waveforms_drawn(page) -> None:
    expect(page.locator("canvas.waveform:not([data-drawn])")).to_have_count(0, timeout=15_000)


def sign_up(page, email: str = "dev@example.com") -> str:
    page.goto("/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/")
    return page.text_content("[data-testid=revealed-secret]").strip()


def test_a_new_user_takes_a_key_rolls_it_hears_a_job_and_revokes_the_key(
    page, live_server, screenshot, tmp_path
):
    base = live_server.url
    page.goto("/")
    screenshot(page, "01-landing")
    page.click("text=Get your API key")
    page.wait_for_url("**/signup/")
    screenshot(page, "02-signup")

    # The key is shown once, and the copy button puts it on the clipboard.
    secret = sign_up(page)
    assert re.fullmatch(r"sk_test_[0-9A-Za-z]{38}", secret)
    assert secret in page.text_content("#quickstart-curl")
    screenshot(page, "03-overview-with-new-key")
    page.click(".secret-once [data-copy]")
    page.wait_for_selector(".secret-once [data-copied]")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert api_status(base, secret) == 200
    page.reload()
    assert page.locator("[data-testid=revealed-secret]").count() == 0

    # Roll it, the old secret stopping now.
    page.goto("/keys/")
    test_column = page.locator(".key-column[data-mode=test]")
    test_column.locator("summary:has-text('Roll')").first.click()
    test_column.locator("select[name=expire_in]").first.select_option("now")
    test_column.locator("button:has-text('Roll key')").first.click()
    page.wait_for_selector("[data-testid=revealed-secret]")
    rolled = page.text_content("[data-testid=revealed-secret]").strip()
    assert rolled != secret
    screenshot(page, "04-keys-with-shown-secret")
    assert api_status(base, secret) == 401
    assert api_status(base, rolled) == 200

    # Try it: upload, watch the test job succeed, play a stem.
    track = tmp_path / "my song.wav"
    track.write_bytes(wav_bytes(seconds=2.0))
    page.goto("/try/")
    page.set_input_files("input[type=file]", str(track))
    page.check("input[name=mode][value=test]")
    page.select_option("select[name=tier]", "pro")
    screenshot(page, "05-try-it")
    page.click("button:has-text('Separate')")
    page.wait_for_url(re.compile(r".*/jobs/job_test_[^/]+/$"))
    page.wait_for_selector("[data-testid=job-status] .status-succeeded", timeout=20_000)
    assert page.locator("audio").count() == 4
    page.wait_for_selector("canvas.waveform[data-drawn=true]")
    page.evaluate("document.querySelector('audio').play()")
    page.evaluate(PLAYED)
    assert page.evaluate("!document.querySelector('audio').paused")
    page.evaluate("document.querySelector('audio').pause()")
    all_waveforms_drawn(page)
    screenshot(page, "06-job-with-players")
    download = page.locator("a:has-text('Download')").first.get_attribute("href")
    assert download.startswith(f"{base}/v1/files/")

    page.goto("/jobs/")
    assert page.locator(".jobs-table tbody tr").count() == 1
    screenshot(page, "07-jobs")
    page.goto("/usage/?mode=test")
    assert page.locator("svg.chart rect").count() == 1
    screenshot(page, "08-usage")
    page.goto("/docs/")
    assert "Create a job" in page.text_content("main")
    screenshot(page, "09-api-reference")
    screenshot(page, "09-api-reference-top", full_page=False)

    # Revoke the rolled key, behind a confirmation.
    page.goto("/keys/")
    page.locator(".key-column[data-mode=test] a:has-text('Revoke')").first.click()
    page.wait_for_url("**/revoke/")
    screenshot(page, "10-revoke-confirmation")
    page.click("button:has-text('Revoke key')")
    page.wait_for_url("**/keys/")
    assert api_status(base, rolled) == 401
    assert page.locator(".key-column[data-mode=test] .key").count() == 0


@pytest.mark.parametrize(
    "path", ["/", "/keys/", "/jobs/", "/try/", "/usage/", "/webhooks/", "/docs/"]
)
def test_pages_fit_a_phone_screen(phone, path, screenshot):
    sign_up(phone, email="phone@example.com")
    phone.goto(path)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
    name = path.strip("/") or "overview"
    screenshot(phone, f"phone-{name}")


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_landing_page_fits_a_phone_screen(phone, screenshot):
    phone.goto("/")
    assert fits(phone)
    screenshot(phone, "phone-landing")


def test_the_job_page_with_players_fits_a_phone_screen(phone, screenshot, tmp_path):
    sign_up(phone, email="phone@example.com")
    track = tmp_path / "a rather long file name for a phone screen.wav"
    track.write_bytes(wav_bytes(seconds=1.0))
    phone.goto("/try/")
    phone.set_input_files("input[type=file]", str(track))
    phone.click("button:has-text('Separate')")
    phone.wait_for_selector("[data-testid=job-status] .status-succeeded", timeout=20_000)
    all_waveforms_drawn(phone)
    assert fits(phone)
    screenshot(phone, "phone-job")


def test_the_policy_blocks_an_inline_style_and_the_browser_tests_see_it(unchecked_page):
    unchecked_page.goto("/login/")
    assert unchecked_page.csp_problems == []
    unchecked_page.evaluate("document.body.setAttribute('style', 'color: red')")
    settle(unchecked_page)
    assert any("style-src" in problem for problem in unchecked_page.csp_problems)
    assert unchecked_page.evaluate("getComputedStyle(document.body).color") != "rgb(255, 0, 0)"

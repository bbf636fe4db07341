"""The usage dashboard: off without a token, a sign-in that shows nothing before it, the
ledger's numbers per pattern/workspace/model as tables (no JavaScript needed), and the
charts drawn in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
driven by Selenium) from those same numbers."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from bot.core.http import HttpServer
from tests.pngpixels import pixels

TOKEN = "dash-token-7"
BLUE = (37, 99, 235)  # the first series' colour in dashboard.js: the busiest group's line

# (hours ago, pattern, model, workspace, cost, cache hit, latency ms, outcome)
ROWS = [
    (1, "streaming", "gpt-4o-mini", "T-alpha", "0.0020", False, 800, "ok"),
    (1, "streaming", "gpt-4o-mini", "T-alpha", "0.0040", False, 1200, "ok"),
    (1, "streaming", "gpt-4o-mini", "T-alpha", "0", True, 20, "ok"),
    (3, "streaming", "gpt-4o-mini", "T-beta", "0.0030", False, 1000, "ok"),
    (3, "rag", "gpt-4o", "T-beta", "0.0500", False, 2500, "ok"),
    (6, "api_wrapper", "gpt-4o-mini", "T-alpha", "0.0010", False, 600, "ok"),
    (6, "api_wrapper", "gpt-4o-mini", "T-alpha", "0", False, 300, "timeout"),
    (30, "streaming", "gpt-4o-mini", "T-alpha", "0.0030", False, 900, "ok"),  # only in the 7-day window
]


@pytest.fixture
async def ledger_rows(app):
    now = datetime.now(timezone.utc)
    async with app.services.db.session.begin() as s:
        for hours, pattern, model, ws, cost, hit, ms, outcome in ROWS:
            await s.execute(text(
                "INSERT INTO usage (created_at, pattern, model, prompt_tokens, completion_tokens, latency_ms, "
                "cost_usd, cache_hit, outcome, streamed, platform, workspace, channel, user_id) VALUES "
                "(:t, :p, :m, 10, 5, :ms, :c, :hit, :o, false, 'slack', :ws, 'C1', 'U-secret')"),
                dict(t=now - timedelta(hours=hours), p=pattern, m=model, ms=ms, c=cost, hit=hit, o=outcome, ws=ws))


@pytest.fixture
async def server(app):
    http = HttpServer(app.services, host="127.0.0.1", port=0)
    for feature in app.features:
        feature.mount(http.app)
    await http.start()
    yield f"http://127.0.0.1:{http.bound_port}"
    await http.stop()


@pytest.fixture
def token(app):
    app.settings.api_token = SecretStr(TOKEN)


async def get(url: str, **kw) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, **kw) as r:
            return r.status, await r.text()


async def test_without_a_token_setting_the_dashboard_is_off_and_says_what_to_set(server):
    status, body = await get(f"{server}/dashboard")
    assert status == 503 and "set <code>AIBOT_API_TOKEN</code>" in body


async def test_without_the_token_only_the_sign_in_form_shows(app, server, token, ledger_rows):
    status, body = await get(f"{server}/dashboard", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and '<form method="post" action="/dashboard/login">' in body
    assert "streaming" not in body and "T-alpha" not in body
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # keep cookies of an IP
        async with http.post(f"{server}/dashboard/login", data={"token": "nope"}, allow_redirects=False) as r:
            assert r.status == 401 and "That token is not right." in await r.text()
            assert "aibot_dashboard" not in r.cookies
        async with http.post(f"{server}/dashboard/login", data={"token": TOKEN}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/dashboard"
            cookie = r.cookies["aibot_dashboard"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict" and TOKEN not in cookie.value
        async with http.get(f"{server}/dashboard") as r:  # the cookie now opens it
            assert r.status == 200 and "<table id=\"totals\">" in await r.text()


async def test_the_tables_show_the_ledger_per_pattern_workspace_and_model_without_javascript(app, server, token,
                                                                                             ledger_rows):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body = await get(f"{server}/dashboard?window=24h", headers=auth)
    assert status == 200
    totals = body.split('<table id="totals">')[1].split("</table>")[0]
    # streaming: 4 calls in 24 h (one a cache hit), cost 0.009; the hit saved one average paid
    # gpt-4o-mini call of the window (0.002+0.004+0.003+0.001+0 over 5 paid calls = 0.002)
    assert ('<tr><th scope="row">streaming</th><td>4</td><td>0</td><td>1</td><td>0.0090</td><td>0.0020</td>'
            in totals)
    assert '<tr><th scope="row">rag</th><td>1</td><td>0</td><td>0</td><td>0.0500</td><td>0.0000</td>' in totals
    assert '<tr><th scope="row">api_wrapper</th><td>2</td><td>1</td>' in totals  # one timeout
    assert "U-secret" not in body  # users never appear
    status, body = await get(f"{server}/dashboard?by=workspace&window=7d", headers=auth)
    assert '<th scope="row">T-alpha</th><td>6</td>' in body and '<th scope="row">T-beta</th><td>2</td>' in body
    status, body = await get(f"{server}/dashboard?by=model&window=24h", headers=auth)
    assert '<th scope="row">gpt-4o</th><td>1</td>' in body and '<th scope="row">gpt-4o-mini</th><td>6</td>' in body
    status, body = await get(f"{server}/dashboard?by=user", headers=auth)
    assert status == 400 and "`by` is one of pattern, workspace, model" in body


async def test_static_files_are_an_allow_list(server):
    status, body = await get(f"{server}/dashboard/static/uPlot.LICENSE")
    assert status == 200 and "MIT License" in body
    status, _ = await get(f"{server}/dashboard/static/..%2F__init__.py")
    assert status == 404


# --------------------------------------------------------------------------- real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("no headless browser here: install Debian's `chromium` and `chromium-driver` to run this test")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it comes with the test extra)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1600", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)


@pytest.mark.slow
async def test_the_charts_render_in_headless_chromium_from_the_ledger(app, server, token, ledger_rows, tmp_path):
    import asyncio

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = await asyncio.to_thread(browser)

    def run() -> dict:
        try:
            driver.get(f"{server}/dashboard?window=24h")
            driver.find_element(By.ID, "token").send_keys(TOKEN)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            # the sign-in navigates: read the new page's state by script, never through a stale element
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return document.body && document.body.dataset.charts") == "4")
            figures = driver.find_elements(By.CSS_SELECTOR, "figure.chart[data-rendered=true]")
            legend = driver.find_element(By.CSS_SELECTOR, "#chart-requests .u-legend").text
            # pixels drawn on each chart's canvas (not transparent)
            inked = driver.execute_script(
                "return Array.from(document.querySelectorAll('figure.chart canvas')).map(c => {"
                " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
                " for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; });")
            shot = driver.find_element(By.ID, "chart-requests").screenshot_as_png
            driver.save_screenshot(str(tmp_path / "dashboard.png"))
            return {"figures": len(figures), "legend": legend, "inked": inked, "shot": shot}
        finally:
            driver.quit()

    seen = await asyncio.to_thread(run)
    assert seen["figures"] == 4
    assert "streaming" in seen["legend"] and "rag" in seen["legend"] and "api_wrapper" in seen["legend"]
    assert len(seen["inked"]) == 4 and all(n > 500 for n in seen["inked"]), seen["inked"]
    width, height, px = pixels(seen["shot"])
    assert width > 300 and height > 200
    background = max(set(px), key=px.count)
    drawn = sum(1 for p in px if p != background)
    assert drawn / len(px) > 0.02, f"the chart screenshot is nearly blank ({drawn} of {len(px)} pixels drawn)"
    assert sum(1 for p in px if p == BLUE) > 20, "the busiest pattern's line (blue) is not on the chart"

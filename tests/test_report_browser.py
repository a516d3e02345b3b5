"""The report in a real headless Chromium, network blocked: every section renders, no console errors.

Chromium and chromedriver come from the Debian packages (/usr/bin/chromium,
/usr/bin/chromedriver); Selenium Manager is never asked to download anything.
Without them the test is skipped, unless CURATOR_REQUIRE_BROWSER=1 (CI), where
it fails. Screenshots of the light and dark page are kept in test-artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from report_fixtures import XSS, build_workspace

CHROMIUM = Path(os.environ.get("CURATOR_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CURATOR_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = REPO / "test-artifacts"
SECTIONS = ["glance", "overview", "labels", "dynamics", "gradsim", "reasoning", "predictions", "examples", "exports"]


def _require_browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        reason = f"headless browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CURATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def start_browser(profile: Path):
    """Headless Chromium with the network blocked (no DNS, a dead proxy) and full logging."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", f"--user-data-dir={profile}", "--disable-background-networking",
                "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--no-first-run", "--mute-audio",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                "--window-size=1280,1000", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    return webdriver.Chrome(service=service, options=opts)


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def full_screenshot(driver, path: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 40, 16000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    _require_browser()
    from curator.reports import ReportConfig, build_report
    from curator.store import Workspace

    root = tmp_path_factory.mktemp("browser")
    ws_path = build_workspace(root / "ws.duckdb", xss=XSS)
    with Workspace(ws_path, read_only=True) as ws:
        build_report(ws, ReportConfig(out=str(root / "report.html")))
    return root / "report.html"


def test_report_renders_in_headless_chromium_offline(report_file, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = start_browser(tmp_path / "profile")
    try:
        url = report_file.resolve().as_uri()
        driver.get("about:blank")
        driver.get_log("performance")  # forget the browser's own start-up pages; only the report's requests count
        driver.get_log("browser")
        driver.get(url)
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")

        # every section is on screen with a real size, and listed in the navigation
        for sid in SECTIONS:
            el = driver.find_element(By.ID, sid)
            assert el.is_displayed(), sid
            assert el.size["height"] > 20 and el.size["width"] > 200, (sid, el.size)
        nav = [a.get_attribute("href").split("#")[-1] for a in driver.find_elements(By.CSS_SELECTOR, "nav.toc a")]
        assert nav == SECTIONS

        # every chart has a box to be seen in
        boxes = driver.execute_script(
            "return Array.from(document.querySelectorAll('svg.chart')).map(s => {"
            " const b = s.getBoundingClientRect(); return [b.width, b.height]; })")
        assert len(boxes) >= 9
        assert all(w > 50 and h > 50 for w, h in boxes), boxes

        # the predictions' warnings are on screen, and an imported run's warnings open from their summary
        assert driver.find_element(By.CSS_SELECTOR, "#predictions .callout.warn").is_displayed()
        assert len(driver.find_elements(By.CSS_SELECTOR, "#predictions table.sortable tbody tr")) >= 15
        warnings = driver.find_element(By.CSS_SELECTOR, "#overview table.imports details.warnings")
        assert not warnings.find_element(By.TAG_NAME, "li").is_displayed()
        warnings.find_element(By.TAG_NAME, "summary").click()
        assert warnings.find_element(By.TAG_NAME, "li").is_displayed()

        # no script ran but ours: no alert, no injected element
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text
        assert driver.execute_script("return document.scripts.length") == 1
        assert driver.find_elements(By.CSS_SELECTOR, "main img, main iframe, body > svg") == []

        # a sortable header reorders its rows
        table = driver.find_element(By.CSS_SELECTOR, "#labels table.sortable")
        def column():
            return [td.text for td in table.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(2)")]
        before = column()
        button = table.find_element(By.CSS_SELECTOR, "thead th:nth-child(2) button")
        button.click()
        ascending = column()
        button.click()
        descending = column()
        assert ascending != before or descending != before
        numbers = [int(x.replace(",", "")) for x in ascending]
        assert numbers == sorted(numbers)
        assert descending == ascending[::-1] or [int(x.replace(",", "")) for x in descending] == sorted(numbers,
                                                                                                        reverse=True)
        assert table.find_element(By.CSS_SELECTOR, "thead th:nth-child(2)").get_attribute("aria-sort") == "descending"

        light = driver.execute_script("return getComputedStyle(document.body).color")
        full_screenshot(driver, ARTIFACTS / "report-light.png")

        # dark mode: the same page with prefers-color-scheme: dark
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        assert driver.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches")
        dark = driver.execute_script("return getComputedStyle(document.body).color")
        dark_bg = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert dark != light and dark_bg != "rgb(255, 255, 255)"
        chart_text = driver.execute_script(
            "return getComputedStyle(document.querySelector('svg.chart text')).fill")
        assert chart_text == dark
        full_screenshot(driver, ARTIFACTS / "report-dark.png")

        # nothing went to the network, and the console is clean (CSP violations and JS errors are SEVERE)
        urls = requested_urls(driver)
        assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)

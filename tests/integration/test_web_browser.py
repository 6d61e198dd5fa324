"""The web view in a real headless Chromium (Debian's `chromium` and `chromium-driver`), over a real server.

Skipped, with the reason, where Chromium or its driver is missing; `.ci/run` installs both. The screenshot
is kept in the test's tmp folder, and also written to `IRONFLOW_SCREENSHOT_DIR` when that is set (how
docs/web-instance.png is made).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from ironflow_py import PostgresStore
from ironflow_py.web import create_app
from tests.ops_fixtures import populate

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium or chromedriver is missing: apt-get install -y chromium chromium-driver",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def base_url(pg_store: PostgresStore) -> Iterator[str]:
    populated = populate(pg_store)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(populated.service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="web-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # set by uvicorn once the socket listens
        assert thread.is_alive(), "the web server died while starting"
        assert time.monotonic() < deadline, "the web server did not start in 30 s"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_instance_page_shows_diagnosis_timeline_and_diagram(base_url: str, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get(f"{base_url}/instances/order-saga/o-overdue")
    diagnosis = browser.find_element(By.ID, "diagnosis")
    assert diagnosis.is_displayed()
    assert "timer 'retry-payment'" in diagnosis.text and "overdue" in diagnosis.text
    timeline = browser.find_element(By.ID, "timeline")
    assert "saga.checkout_started/1" in timeline.text and "saga.payment_attempt_failed/1" in timeline.text
    drawing = browser.find_element(By.CSS_SELECTOR, "#diagram svg")
    assert drawing.is_displayed() and drawing.size["height"] > 50
    assert {"new", "charging"} <= {t.text for t in drawing.find_elements(By.CSS_SELECTOR, "text.state-name")}
    assert browser.find_element(By.ID, "diagnosis").location["y"] < timeline.location["y"], "diagnosis comes first"

    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    # The whole page in one picture: make the viewport as tall as the document.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": max(800, height), "deviceScaleFactor": 1, "mobile": False},
    )
    shot = tmp_path / "web-instance.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("IRONFLOW_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(target) / "web-instance.png")
        browser.get(f"{base_url}/")
        browser.save_screenshot(str(Path(target) / "web-overview.png"))

"""A real browser for tests of the pages we write: Debian's headless Chromium driven by Selenium,
with every network request blocked and logged, and downloads landing in a folder of the test.

``make test`` installs ``chromium`` and ``chromium-driver`` (scripts/install-system-deps.sh) and
Selenium (requirements-dev.txt); without them the browser tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: screenshots of the pages as a rep sees them, kept after the run
SCREENSHOTS = ROOT / "test-output" / "browser"
#: the widths pages are checked at: a desktop and a phone
DESKTOP = (1400, 1000)
PHONE = (390, 844)
#: what a page from disk may load: itself, its data and its own downloads
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "devtools:")


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class Browser:
    """One headless Chromium; ``requests()`` lists every URL the pages asked for."""

    def __init__(self, downloads: Path, size: tuple[int, int] = DESKTOP):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        browser, driver = chromium_paths()
        self.downloads = downloads
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-default-apps",
                         "--disable-extensions", "--metrics-recording-only", "--hide-scrollbars",
                         f"--window-size={size[0]},{size[1]}"):
            options.add_argument(argument)
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads), "download.prompt_for_download": False,
            "safebrowsing.enabled": False})
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*",
                                                                        "wss://*", "ftp://*"]})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {
            "behavior": "allow", "downloadPath": str(downloads), "eventsEnabled": True})
        self._requested: list[str] = []

    def open(self, path: Path) -> None:
        self.driver.get(path.resolve().as_uri())

    def requests(self) -> list[str]:
        """Every URL requested since the browser started (from Chromium's DevTools log)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requested.append(message["params"]["request"]["url"])
        return list(self._requested)

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests() if not url.startswith(LOCAL_SCHEMES)]

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def wait_for_download(self, name: str, timeout: float = 20.0) -> Path:
        path = self.downloads / name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and not (self.downloads / (name + ".crdownload")).exists() and path.stat().st_size:
                return path
            time.sleep(0.1)
        raise AssertionError(f"{name} was not downloaded to {self.downloads}: {sorted(os.listdir(self.downloads))}")

    def screenshot(self, name: str, size: tuple[int, int], full_height: bool = True) -> Path:
        """A screenshot at ``size`` (the whole page's height with ``full_height``), kept in
        test-output/browser/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.set_window_size(*size)
        if full_height:
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(size[0], max(size[1], min(int(height) + 20, 6000)))
        path = SCREENSHOTS / name
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(*size)
        return path

    def close(self) -> None:
        self.driver.quit()


def open_chromium(tmp_path):
    """For a fixture: a headless Chromium with the network off, downloads in ``tmp_path / "downloads"``;
    skips the test when Chromium, its driver or Selenium is missing."""
    if chromium_paths() is None:
        pytest.skip("Chromium and its driver are not installed (make test installs chromium and chromium-driver)")
    pytest.importorskip("selenium", reason="Selenium is not installed (make test installs requirements-dev.txt)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = Browser(downloads)
    yield browser
    browser.close()

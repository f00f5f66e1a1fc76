"""The widgets where users open them: the settings form and the latent explorer served by Voila (`ganlib form`,
`ganlib explore RUN --serve`), driven in headless Chromium through chromedriver (Debian's `chromium` and
`chromium-driver`, installed by scripts/setup.sh --test). Slow tier; CI runs it. Where the browser or the front
end is missing it fails in CI and is skipped elsewhere with what to install (as tests/test_quarto.py does).
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from tiny import TINY

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


def _missing():
    import importlib.util

    needs = [what for what, ok in (("chromium", CHROMIUM), ("chromium-driver", DRIVER),
                                   ("voila (pip install 'ganlib[notebook]')", importlib.util.find_spec("voila")),
                                   ("selenium", importlib.util.find_spec("selenium"))) if not ok]
    return needs


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        message = "the browser test needs " + ", ".join(missing) + " (bash scripts/setup.sh --test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _wait(condition, timeout=120, what="the page"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # the element is not there yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _text_input(driver, name):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//div[contains(@class,'widget-text')][.//label[normalize-space()='{name}']]//input")


def test_the_form_shows_errors_and_trains_and_the_explorer_slider_changes_the_image(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from ganlib.serve import form_notebook, start_voila

    values = {**TINY, "epochs": 1}
    voila, url = start_voila(form_notebook(values, tmp_path), cwd=tmp_path)
    try:
        browser.get(url)
        train = _wait(lambda: browser.find_element(By.XPATH, "//button[contains(normalize-space(), 'Train')]"),
                      what="the form's Train button")
        assert "valid: config hash" in browser.page_source
        _wait(lambda: browser.find_element(By.XPATH, "//*[contains(@class,'Collapse-header')][contains(., 'data')]")
              ).click()  # open the "data" section
        subset = _wait(lambda: _text_input(browser, "subset"), what="the subset field")
        subset.send_keys(Keys.CONTROL, "a")
        subset.send_keys("lots", Keys.ENTER)
        _wait(lambda: "Invalid configuration: subset=&#x27;lots&#x27;" in browser.page_source
              or "Invalid configuration: subset='lots'" in browser.page_source, what="the error of a bad value")
        assert not train.is_enabled()  # an invalid configuration cannot be trained
        subset.send_keys(Keys.CONTROL, "a")
        subset.send_keys("64", Keys.ENTER)
        _wait(lambda: train.is_enabled(), what="the form to become valid again")
        train.click()
        summary = _wait(lambda: next((tmp_path / "runs").glob("*/summary.json"), None), what="the run to start")
        _wait(lambda: '"status": "completed"' in summary.read_text(), timeout=300, what="the run to complete")
        _wait(lambda: "completed" in browser.page_source, what="the form to report the outcome")
    finally:
        voila.terminate()

    run_dir = summary.parent
    explore = tmp_path / "explore.ipynb"
    subprocess.run([sys.executable, "-m", "ganlib", "explore", str(run_dir), "--out", str(explore)], check=True,
                   cwd=tmp_path, capture_output=True, timeout=600)
    voila, url = start_voila(explore, cwd=tmp_path)
    try:
        browser.get(url)
        readout = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".widget-slider .widget-readout")[0],
                        what="the explorer's sliders")
        image = browser.find_element(By.CSS_SELECTOR, ".widget-image")
        before = image.get_attribute("src")
        readout.click()
        readout.send_keys(Keys.CONTROL, "a")
        readout.send_keys("2.5", Keys.ENTER)
        _wait(lambda: browser.find_element(By.CSS_SELECTOR, ".widget-image").get_attribute("src") != before,
              timeout=60, what="the image to change with the slider")
    finally:
        voila.terminate()


def test_the_commands_say_how_to_install_the_front_end(monkeypatch, capsys):
    from ganlib import serve

    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name: None)
    assert serve.front_end_missing() == serve.INSTALL_HINT
    assert serve.serve(Path(ROOT) / "x.ipynb") == 2 and "pip install 'ganlib[notebook]'" in capsys.readouterr().err

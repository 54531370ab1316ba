"""``wdmt serve``: the server's answers over HTTP, and the page in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wdmt.serve import PAGE, Scorer, make_server


@pytest.fixture(scope="module")
def server():
    srv = make_server(Scorer(), port=0, max_mb=2.0)  # the shipped model; a small limit to test it
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from wdmt.synth import render

    p = tmp_path_factory.mktemp("photos") / "eye.jpg"
    Image.fromarray(render(512, np.random.default_rng(2), abnormal=True).image).save(p, quality=92)
    return p


def _post(url: str, body: bytes, name: str) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/api/score", data=body, headers={"X-Filename": name}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_page_loads_nothing_from_the_internet():
    html = PAGE.read_text()
    assert "http://" not in html and "https://" not in html and "@import" not in html


def test_scores_a_photograph_and_refuses_bad_uploads_without_falling_over(server, photo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, r = _post(server, photo.read_bytes(), "eye.jpg")
    assert code == 200 and r["decision"] in ("normal", "abnormal") and r["score"] > 0
    assert r["pixel_threshold"] > 0 and r["map_max"] == pytest.approx(2 * r["pixel_threshold"])
    assert r["width"] == 512 and r["height"] == 512 and r["photo"] and r["map"]
    code, r = _post(server, b"this is not a photograph", "notes.jpg")
    assert code == 400 and "notes.jpg" in r["error"] and "Traceback" not in r["error"]
    code, r = _post(server, b"\0" * 2_500_000, "huge.png")
    assert code == 413 and "limit" in r["error"]
    code, r = _post(server, photo.read_bytes(), "again.jpg")  # still up
    assert code == 200
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name) and shutil.which("chromedriver"):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium with chromedriver (Debian: apt install chromium "
                                                 "chromium-driver)")
def test_in_a_real_browser_the_overlay_and_score_appear_and_a_bad_file_gets_its_message(server, photo, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = _chromium()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_element(By.ID, "model").get_attribute("data-ready") == "1")
        driver.find_element(By.ID, "files").send_keys(str(photo))
        score = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "td.score")))
        assert float(score.text) > 0
        assert "1 / 1 scored" in driver.find_element(By.ID, "count").text
        # the overlay canvas holds the photograph with the map blended in: it differs from the plain photograph
        differs = driver.execute_script(
            "const a = document.getElementById('photo'), b = document.getElementById('overlay');"
            "const x = a.getContext('2d').getImageData(0, 0, a.width, a.height).data;"
            "const y = b.getContext('2d').getImageData(0, 0, b.width, b.height).data;"
            "let n = 0; for (let i = 0; i < x.length; i += 4) if (x[i] !== y[i] || x[i + 2] !== y[i + 2]) n++;"
            "return [a.width, n];")
        assert differs[0] == 512 and differs[1] > 1000
        assert driver.find_element(By.ID, "download").get_attribute("href").startswith("data:image/png")
        assert "eye.jpg" in driver.find_element(By.ID, "verdict").text
        bad = tmp_path / "report.jpg"
        bad.write_text("a text file with an image's name")
        driver.find_element(By.ID, "files").send_keys(str(bad))
        wait.until(lambda d: "report.jpg" in d.find_element(By.ID, "message").text)
        message = driver.find_element(By.ID, "message").text
        assert "not an image" in message and "Traceback" not in message
        driver.save_screenshot(str(tmp_path / "serve.png"))
    finally:
        driver.quit()

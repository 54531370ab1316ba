"""The README's picture of ``wdmt serve``: the shipped model on one photograph, in headless Chromium.

    python scripts/screenshot_serve.py PHOTO [--out docs/serve.png]
"""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from wdmt.serve import Scorer, make_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("photo", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    a = ap.parse_args()
    srv = make_server(Scorer(), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    try:
        d.get(f"http://127.0.0.1:{srv.server_address[1]}/")
        d.find_element(By.ID, "files").send_keys(str(a.photo.resolve()))
        WebDriverWait(d, 180).until(ec.presence_of_element_located((By.CSS_SELECTOR, "td.score")))
        d.execute_script("document.getElementById('zoom').value = 1; document.querySelectorAll('.pane canvas')"
                         ".forEach(c => c.style.width = '620px');")
        d.save_screenshot(str(a.out))
    finally:
        d.quit()
        srv.shutdown()
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

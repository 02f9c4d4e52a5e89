"""Opens a report page in headless Chromium (Debian's, driven by Playwright) and prints, as JSON,
what a test checks: console messages, page errors, every request other than the page itself,
and each figure's id, its SVG's drawn elements and its data attributes; writes a screenshot.

    open_report.py PAGE.html SCREENSHOT.png
"""

import json
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

page_path, screenshot = Path(sys.argv[1]).resolve(), sys.argv[2]
url = page_path.as_uri()
found = {"console": [], "errors": [], "requests": [], "figures": []}
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda m: found["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: found["errors"].append(str(e)))
    page.on(
        "request",
        lambda r: None if r.url == url else found["requests"].append(r.url),
    )
    page.goto(url, wait_until="load")
    found["title"] = page.title()
    found["figures"] = page.eval_on_selector_all(
        "figure.figure",
        """figures => figures.map(f => {
            const svg = f.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {
                id: f.id,
                drawn: svg ? svg.querySelectorAll('rect, circle, polyline, path, line').length : 0,
                width: box.width,
                height: box.height,
                data: Object.assign({}, f.dataset),
            };
        })""",
    )
    found["sections"] = page.eval_on_selector_all("h2", "hs => hs.map(h => h.id)")
    page.screenshot(path=screenshot, full_page=True)
    browser.close()
print(json.dumps(found))

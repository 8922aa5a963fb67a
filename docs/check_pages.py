"""Checks the built docs as a reader's browser shows them: ``make docs-check``.

    python docs/check_pages.py [docs/_build/html]          # every page, in Chromium
    python docs/check_pages.py --links-only [BUILD_DIR]    # the links alone, no browser

Every page of the build (guide pages, API reference, index, search, source
pages) is served from localhost and rendered by headless Chromium (Debian's
``chromium`` package; ``CHROMIUM=/path`` picks another binary). A probe
script, added to each page as it is served, records what the browser reports.
The check fails (exit status 1, one line per problem) on

* a file a page loads that is not there (image, stylesheet, script, font): the
  server answered 404, or the browser reported a load error;
* an image the browser cannot draw (``naturalWidth == 0``: missing or damaged);
* a link to a page of the site that does not exist, or to an anchor that the
  page does not have (checked in the rendered DOM, so links made by scripts
  count too);
* a console error: ``console.error``, an uncaught exception, a rejected promise.
* a table, a text diagram or a picture cut off in a window 1280 px wide: wider
  than the column that holds it, so part of it is out of sight.

Links to other sites are not followed, and files loaded from other sites
(MathJax from its CDN) are not checked: the check works offline.
"""

import argparse
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

DEFAULT_BUILD = Path(__file__).resolve().parent / "_build" / "html"
REPORT_ID = "docs-check-report"
WIDTH = 1280  # px: a laptop's window, where tables and diagrams must fit their column

# Runs first in <head>: collects errors, and after the load event the images
# that did not render, into a JSON element that --dump-dom then shows.
PROBE = r"""<script>(function () {
  var problems = [];
  var consoleError = console.error;
  console.error = function () {
    problems.push("console error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      problems.push("failed to load " + (target.src || target.href));
    } else {
      problems.push("uncaught error: " + event.message + " (" + event.filename + ":" +
                    event.lineno + ")");
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    problems.push("unhandled promise rejection: " + event.reason);
  });
  window.addEventListener("load", function () {
    setTimeout(function () {
      Array.prototype.forEach.call(document.images, function (image) {
        if (!image.complete || image.naturalWidth === 0) {
          problems.push("image does not render: " + (image.currentSrc || image.src));
        }
      });
      // Cut off at a laptop's width (the window is WIDTH px wide): a table, a text
      // diagram or a picture wider than the column that holds it.
      var wide = document.querySelectorAll(
        "article .table-wrapper, article div.highlight-text pre, article img");
      Array.prototype.forEach.call(wide, function (element) {
        var holder = element.tagName === "IMG" ? element.closest("figure, p, div, td")
                                               : element;
        var needs = element.tagName === "IMG" ? element.getBoundingClientRect().width
                                              : element.scrollWidth;
        if (needs > holder.clientWidth + 1) {
          var text = (element.textContent || element.getAttribute("src") || "")
            .replace(/\s+/g, " ").trim();
          problems.push("cut off at " + window.innerWidth + " px: a " +
                        element.tagName.toLowerCase() + " (" + text.slice(0, 40) + "...) needs " +
                        Math.round(needs) + " px, has " + holder.clientWidth);
        }
      });
      var report = document.createElement("script");
      report.type = "application/json";
      report.id = "@REPORT_ID@";
      report.textContent = JSON.stringify(problems);
      document.body.appendChild(report);
    }, 0);
  });
})();</script>""".replace("@REPORT_ID@", REPORT_ID).replace("WIDTH", str(WIDTH))


# --- the pages and what they refer to ---------------------------------------------------


class PageParser(HTMLParser):
    """The ids a page defines and the URLs it refers to (links, images, scripts, styles)."""

    REFERENCES = {"a": "href", "img": "src", "script": "src", "link": "href", "iframe": "src"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.report = set(), [], None
        self._in_report = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        attribute = self.REFERENCES.get(tag)
        if attribute and attrs.get(attribute) and not _is_hint(tag, attrs):
            self.links.append((tag, attrs[attribute]))
        self._in_report = attrs.get("id") == REPORT_ID

    def handle_data(self, data):
        if self._in_report:
            self.report = (self.report or "") + data

    def handle_endtag(self, tag):
        self._in_report = False


def _is_hint(tag, attrs):
    """``<link rel="preconnect">`` and the like name hosts, not files."""
    return tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch", "canonical")


def parse(html):
    parser = PageParser()
    parser.feed(html)
    return parser


def all_pages(build):
    return sorted(p.relative_to(build).as_posix() for p in build.rglob("*.html"))


@functools.lru_cache(maxsize=None)
def _ids_of(path):
    return frozenset(parse(path.read_text(encoding="utf-8")).ids)


def link_problems(build, page, links, base_url):
    """Links of ``page`` (as ``base_url`` + page) to files or anchors the build lacks."""
    problems = []
    for tag, url in links:
        absolute = urljoin(base_url + page, url)
        if not absolute.startswith(base_url):
            continue  # another site (or mailto:, javascript:): not followed
        parts = urlsplit(absolute[len(base_url) :])
        target = build / unquote(parts.path)
        if target.is_dir() or not parts.path:
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{page}: <{tag}> refers to a missing file: {url}")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in _ids_of(target):
                problems.append(f"{page}: link to a missing anchor: {url}")
    return problems


def check_links(build):
    """The link check on the files as built (no browser): a list of problems."""
    base = "http://docs.invalid/"
    problems = []
    for page in all_pages(build):
        parsed = parse((build / page).read_text(encoding="utf-8"))
        problems += link_problems(build, page, parsed.links, base)
    return problems


# --- serving the build, and rendering it in Chromium ----------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    """Serves the build, adds the probe to each page, records every request that failed."""

    failures = None  # a list, set per server

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        html = path.read_text(encoding="utf-8")
        body = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + PROBE, html, count=1).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_request(self, code="-", size="-"):
        if isinstance(code, int) and code >= 400:  # HTTPStatus is an int; "-" is not
            self.failures.append((self.path, int(code), self.headers.get("Referer")))

    def log_message(self, *args):  # quiet: problems are reported at the end
        pass


class Site:
    """The build served on 127.0.0.1 (a free port) while the ``with`` block runs."""

    def __init__(self, build):
        handler = type("Handler", (_Handler,), {"failures": []})
        self.failures = handler.failures
        self.server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(build))
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def find_chromium():
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def render(chromium, url, timeout=60):
    """The DOM of ``url`` after its load event, as headless Chromium dumps it."""
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-dev-shm-usage", "--virtual-time-budget=3000",
        f"--window-size={WIDTH},900",
        "--dump-dom", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return result.stdout


def check_page(chromium, site, build, page):
    dom = parse(render(chromium, site.url + page))
    if dom.report is None:
        return [f"{page}: the page did not finish loading in Chromium"]
    problems = [
        f"{page}: {problem}"
        for problem in json.loads(dom.report)
        if not _other_site(problem, site.url)
    ]
    return problems + link_problems(build, page, dom.links, site.url)


def _other_site(problem, site_url):
    """A load error of another site's file (MathJax from its CDN): unknowable offline."""
    return problem.startswith("failed to load ") and not problem.startswith(
        "failed to load " + site_url
    )


def check_site(build, chromium, jobs=2, pages=None):
    """Renders every page (or these); returns (number of pages, list of problems)."""
    names = all_pages(build) if pages is None else pages
    with Site(build) as site, ThreadPoolExecutor(jobs) as pool:
        results = pool.map(lambda page: check_page(chromium, site, build, page), names)
        problems = [problem for result in results for problem in result]
        for path, code, referer in site.failures:
            page = referer[len(site.url) :] if referer else "?"
            problems.append(f"{page}: the server answered {code} for {unquote(path)}")
    return len(names), sorted(set(problems))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", type=Path, default=DEFAULT_BUILD,
                        help="the HTML build folder (default: docs/_build/html)")  # fmt: skip
    parser.add_argument("--links-only", action="store_true", help="no browser: links alone")
    parser.add_argument("--jobs", type=int, default=2, help="pages rendered at once")
    args = parser.parse_args(argv)
    if not (args.build / "index.html").is_file():
        sys.exit(f"error: no index.html in {args.build}; build the docs first: make docs")
    if args.links_only:
        count, problems = len(all_pages(args.build)), check_links(args.build)
    else:
        chromium = find_chromium()
        if chromium is None:
            sys.exit(
                "error: Chromium not found; install it (Debian: apt-get install chromium) "
                "or set CHROMIUM=/path/to/chrome"
            )
        count, problems = check_site(args.build, chromium, args.jobs)
    for problem in problems:
        print(problem)
    what = "links of" if args.links_only else "rendered"
    print(f"docs-check: {what} {count} pages, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

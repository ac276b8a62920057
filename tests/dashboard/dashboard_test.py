#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, headless, driven through chromedriver's
WebDriver protocol (plain HTTP and JSON, so only Python's standard library is needed).

A wasmlet runs the quickstart (function1 and function2, id_1 and id_2) with an admin token. The
test checks the token rules over plain HTTP, then in the browser: signs in on the login page,
sees the quickstart's functions, installs hello.wasm through the form, sends traffic and sees
the table's counters and the charts move (requests, latency, error answers), changes the
instance count, takes a screenshot (kept as dashboard.png in the output folder), and uninstalls
the function with the page's two-click button. All traffic is on 127.0.0.1.

    dashboard_test.py --wasmlet BIN --examples DIR --config QUICKSTART.json --out DIR
"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOKEN = "dashboard-test-token"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers with lower-case names, body text) of one request; HTTP errors are
    answers, not exceptions."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, lower_keys(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, lower_keys(e.headers), e.read().decode()


def lower_keys(headers):
    return {key.lower(): value for key, value in headers.items()}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_for(what, predicate, timeout=20.0, interval=0.2):
    """Polls `predicate` until it returns a true value; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # the page may be between two renders
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Browser:
    """A chromedriver session on headless chromium."""

    def __init__(self, workdir):
        self.port = free_port()
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.port}"],
            stdout=open(os.path.join(workdir, "chromedriver.log"), "w"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for("chromedriver to listen", lambda: http("GET", self.base + "/status")[0] == 200)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--window-size=1440,1100",
                "--user-data-dir=" + os.path.join(workdir, "chromium-profile")]
        answer = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": shutil.which("chromium") or "/usr/bin/chromium", "args": args}}}})
        self.session = answer["sessionId"]

    def call(self, method, path, body=None):
        status, _, text = http(method, self.base + path, json.dumps(body) if body is not None else None,
                               {"Content-Type": "application/json"}, timeout=60)
        answer = json.loads(text) if text else {}
        value = answer.get("value")
        if status != 200:
            raise AssertionError(f"WebDriver {method} {path}: HTTP {status}: {value}")
        return answer if path == "/session" and method == "POST" and "sessionId" in answer else value

    def session_call(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.session_call("POST", "/url", {"url": url})

    def find(self, css):
        return self.session_call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text):
        element = self.find(css)
        self.session_call("POST", f"/element/{element}/clear", {})
        self.session_call("POST", f"/element/{element}/value", {"text": text})

    def click(self, css):
        self.session_call("POST", f"/element/{self.find(css)}/click", {})

    def script(self, source, *args):
        return self.session_call("POST", "/execute/sync", {"script": source, "args": list(args)})

    def text(self, css):
        return self.script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.session_call("GET", "/screenshot")))

    def close(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        except Exception:
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()


def quickstart_config(template, examples, workdir, port, admin_port):
    """configs/quickstart.json on this test's ports and files, with an admin token."""
    with open(template) as f:
        config = json.load(f)
    for listener in config["servers"][0]["listeners"]:
        if listener["name"] == "grpc":
            listener["address"] = "127.0.0.1:0"
            grpc = listener["filter_chains"][0]["filters"][0]["config"]["grpc_config"]
            grpc["state"]["state_demo"]["metadata"]["path"] = os.path.join(workdir, "state.db")
        if listener["name"] == "wasm":
            listener["address"] = f"127.0.0.1:{port}"
            for plugin in listener["stream_filters"][0]["config"].values():
                # A copy in the test's folder: the page (and the screenshot) shows a short path.
                name = os.path.basename(plugin["vm_config"]["path"])
                shutil.copy(os.path.join(examples, name), os.path.join(workdir, name))
                plugin["vm_config"]["path"] = os.path.join(workdir, name)
    config["wasmlet"] = {"admin_address": f"127.0.0.1:{admin_port}", "admin_token": TOKEN}
    return config


class Traffic(threading.Thread):
    """Requests to the function port until stopped: to `hello`, to id_1, and to an id nobody
    serves (404s, so that the error chart has something to show)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.answers = {}

    def run(self):
        calls = [("hello", "/traffic"), ("id_1", "/?name=book1"), ("hello", "/again"), ("nobody", "/")]
        i = 0
        while not self.stop.is_set():
            route, path = calls[i % len(calls)]
            status, _, _ = http("GET", f"http://127.0.0.1:{self.port}{path}", headers={"id": route}, timeout=5)
            self.answers[(route, status)] = self.answers.get((route, status), 0) + 1
            i += 1
            time.sleep(0.005)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wasmlet", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    for tool in ("chromium", "chromedriver"):
        check(shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs Debian's chromium and chromium-driver")

    workdir = tempfile.mkdtemp(prefix="wasmlet-dashboard-")
    port, admin_port = free_port(), free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    config_path = os.path.join(workdir, "config.json")
    with open(config_path, "w") as f:
        json.dump(quickstart_config(args.config, args.examples, workdir, port, admin_port), f, indent=2)
    seeded = subprocess.run([args.wasmlet, "state", "set", "state_demo", "book1", "100", "-c", config_path],
                            capture_output=True, text=True)
    check(seeded.returncode == 0, f"seeding the state store failed: {seeded.stdout}{seeded.stderr}")
    log_path = os.path.join(workdir, "wasmlet.log")
    server = subprocess.Popen([args.wasmlet, "start", "-c", config_path], stdout=open(log_path, "w"),
                              stderr=subprocess.STDOUT)
    browser = None
    traffic = None
    try:
        wait_for("wasmlet to be ready", lambda: http("GET", admin + "/health/readiness")[0] == 200)

        # Token rules, as the admin API's: the page and the data need the token ...
        status, _, body = http("GET", admin + "/")
        check(status == 401 and "Admin token" in body, f"GET / without the token: {status}, expected the login page")
        status, _, _ = http("GET", admin + "/wasm/stats")
        check(status == 401, f"GET /wasm/stats without the token answered {status}, expected 401")
        status, _, body = http("POST", admin + "/login", "token=wrong",
                               {"Content-Type": "application/x-www-form-urlencoded"})
        check(status == 401 and "not the configured admin token" in body, f"a wrong token at /login: {status}")
        status, headers, _ = http("POST", admin + "/login", "token=" + TOKEN,
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        cookie = headers.get("set-cookie", "")
        check(status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie,
              f"the right token at /login: {status} {cookie!r}, expected a 303 with an HttpOnly SameSite cookie")
        status, _, _ = http("GET", admin + "/wasm/stats", headers={"Cookie": cookie.split(";")[0]})
        check(status == 200, f"GET /wasm/stats with the login cookie answered {status}")
        # ... and a change posted by another site's page is refused even with it.
        status, _, _ = http("POST", admin + "/wasm/uninstall", json.dumps({"name": "id_1"}),
                            {"Cookie": cookie.split(";")[0], "Origin": "http://evil.example",
                             "Content-Type": "text/plain"})
        check(status == 403, f"a cross-origin uninstall answered {status}, expected 403")

        browser = Browser(workdir)
        browser.go(admin + "/")
        wait_for("the login page", lambda: "sign in" in (browser.script("return document.title;") or ""))
        browser.type("input[name=token]", TOKEN)
        browser.click("form button")
        wait_for("the quickstart's two functions in the table",
                 lambda: browser.script("return document.querySelectorAll('#functions tr[data-id]').length;") == 2
                 and browser.text('tr[data-id="id_1"] td.plugin') == "function1"
                 and browser.text('tr[data-id="id_2"] td.plugin') == "function2")
        check(browser.text("#status") == "live", f"the status badge reads {browser.text('#status')!r}")
        id_1_instances = browser.text('tr[data-id="id_1"] td.instances')
        check(id_1_instances == "0 / 2 / 0", f"id_1's instances (busy / idle / retiring): {id_1_instances!r}")

        # A refused install says why under the form, and lands in the panel of warnings.
        browser.type("#install-form input[name=path]", os.path.join(workdir, "missing.wasm"))
        browser.type("#install-form input[name=id]", "missing")
        browser.click("#install-form button")
        wait_for("the refused install's reason under the form",
                 lambda: "cannot" in browser.text("#install-result") or "no such" in browser.text("#install-result"))
        check(browser.script("return document.getElementById('install-result').className;") == "result error",
              "a refused install is not shown as an error")
        wait_for("the refused install in the panel of warnings",
                 lambda: "/wasm/install refused (400): config body.vm_config.path: cannot read" in browser.text("#problems"))

        # Install through the form.
        shutil.copy(os.path.join(args.examples, "hello.wasm"), os.path.join(workdir, "hello.wasm"))
        browser.type("#install-form input[name=path]", os.path.join(workdir, "hello.wasm"))
        browser.type("#install-form input[name=id]", "hello")
        browser.type("#install-form input[name=instances]", "2")
        browser.click("#install-form button")
        wait_for("the installed function's row", lambda: browser.text('tr[data-id="hello"] td.plugin') == "hello")
        check(browser.text("#install-result") == "installed hello", f"install result: {browser.text('#install-result')!r}")
        status, _, body = http("GET", f"http://127.0.0.1:{port}/x", headers={"id": "hello"})
        check(status == 200 and "hello from wasm" in body, f"hello after the install: {status} {body!r}")

        # Traffic moves the counters and the charts.
        traffic = Traffic(port)
        traffic.start()
        rps = lambda: float(browser.text('tr[data-id="hello"] td.rps').replace(",", "") or 0)
        wait_for("hello's requests per second above 0", lambda: rps() > 0)
        wait_for("hello's request count to grow",
                 lambda: int(browser.text('tr[data-id="hello"] td.requests').replace(",", "")) > 10)
        wait_for("a p99 latency for hello", lambda: browser.text('tr[data-id="hello"] td.p99').endswith("ms"))
        chart = lambda name, key: float(browser.script(
            "return document.getElementById(arguments[0]).dataset[arguments[1]] || '0';", name, key))
        wait_for("the requests chart to draw traffic", lambda: chart("chart-rps", "latest") > 0)
        wait_for("the latency chart to draw points", lambda: chart("chart-latency", "points") > 0)
        wait_for("the error chart to show the 404s", lambda: chart("chart-errors", "latest") > 0)
        check(float(browser.text("#total-rps").replace(",", "")) > 0, "the requests/s card stayed at 0")
        wait_for("the install in the log panel",
                 lambda: "admin: installed 'hello'" in browser.text("#log"))
        time.sleep(6)  # a few more points, so that the screenshot shows lines, not dots
        browser.screenshot(os.path.join(args.out, "dashboard.png"))

        # Update the instance count from the row.
        browser.type('tr[data-id="hello"] input[type=number]', "3")
        browser.click('tr[data-id="hello"] button.update')
        def instances():
            busy, idle, _ = (int(n) for n in browser.text('tr[data-id="hello"] td.instances').split(" / "))
            return busy + idle == 3
        wait_for("hello to run 3 instances", instances)

        traffic.stop.set()
        traffic.join(10)
        check(traffic.answers.get(("hello", 200), 0) > 0, f"no 200 from hello under traffic: {traffic.answers}")
        check(traffic.answers.get(("nobody", 404), 0) > 0, f"no 404 for the unknown id: {traffic.answers}")

        # Uninstall: the first click arms the button, the second removes.
        browser.click('tr[data-id="hello"] button.uninstall')
        check(browser.text('tr[data-id="hello"] button.uninstall') == "Confirm uninstall",
              "the uninstall button did not ask for a confirmation")
        browser.click('tr[data-id="hello"] button.uninstall')
        wait_for("hello's row to go", lambda: browser.script(
            "return document.querySelector('tr[data-id=\"hello\"]') === null;"))
        check(browser.text("#action-result") == "uninstalled hello", f"action result: {browser.text('#action-result')!r}")
        status, _, _ = http("GET", f"http://127.0.0.1:{port}/x", headers={"id": "hello"})
        check(status == 404, f"hello still answers after the uninstall: {status}")
        status, _, body = http("GET", admin + "/wasm/list", headers={"Authorization": "Bearer " + TOKEN})
        check(status == 200 and sorted(f["id"] for f in json.loads(body)) == ["id_1", "id_2"],
              f"/wasm/list after the uninstall: {body}")
        print(f"dashboard test passed; screenshot: {os.path.join(args.out, 'dashboard.png')}")
        return 0
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        if browser:
            try:
                browser.screenshot(os.path.join(args.out, "dashboard-failure.png"))
            except Exception:
                pass
        with open(log_path) as f:
            print("--- the server's log (last 40 lines) ---\n" + "".join(f.readlines()[-40:]), file=sys.stderr)
        return 1
    finally:
        if traffic:
            traffic.stop.set()
        if browser:
            browser.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

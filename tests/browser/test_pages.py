"""The example pages in a real browser: Debian's Chromium, headless, driven
by Playwright for Python (the pip package, using /usr/bin/chromium; no
`playwright install`).

chat (build/examples/chat_server on a free port, examples-c/web/chat):
the page loads from the server and connects; two pages join as Alice and
Bob and both names are in both presence lists; a message typed in Alice's
page appears in Bob's (and in hers); the statistics the server pushes
every second show 2+ connections and messages in/out that grow; Bob
closing his page takes him off Alice's list.

workflows (build/examples/workflows_server, examples-c/web/workflows):
two pages log in as Carol and Dave (the server's "Welcome Carol"); echo
comes back to Carol only; a message routed to "Dave" arrives in Dave's
page from Carol; both join group "lobby" and Dave's publication reaches
both; Carol subscribes to the ticks and counts them arriving (5+ in 2 s,
Dave, not subscribed, none), then unsubscribes and they stop.

No page may log a JavaScript or console error or get an HTTP error (the
favicon included). Screenshots go to build/browser/*.png.
The last line printed is "N passed, M failed"; exit status 1 on failure.
Run: bash tests/browser/run.sh (or python3 tests/browser/test_pages.py).
"""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from playwright.sync_api import expect, sync_playwright

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "build", "examples")
SHOTS = os.path.join(ROOT, "build", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Two pages side by side: the one in the background must not be throttled.
    "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]
WAIT_MS = 5000  # for any one thing to show up in a page

expect.set_options(timeout=WAIT_MS)


class Server:
    """An example server on a free port; reads its "listening on" and "page:" lines."""

    def __init__(self, name):
        self.name = name
        self.proc = subprocess.Popen(
            [os.path.join(EXAMPLES, name), "127.0.0.1", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        )
        first, second = self._line(10), self._line(5)
        m = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)", first or "")
        p = re.fullmatch(r"page: (http://127\.0\.0\.1:(\d+)/)", second or "")
        if not m or not p or p.group(2) != m.group(1):
            self.stop()
            raise AssertionError(f"{name}: expected 'listening on ws://..' and 'page: http://../', got {first!r}, {second!r}")
        self.url = p.group(1)

    def _line(self, timeout):
        deadline, buf, fd = time.monotonic() + timeout, b"", self.proc.stdout.fileno()
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace").rstrip("\n") or None

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class Run:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # an assertion, a Playwright timeout, anything
            self.failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f} s): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            traceback.print_exc(limit=3, file=sys.stdout)
            return False
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - t0:.1f} s)")
        return True


def front(page):
    """The page to act on, brought to the front first: Chromium keeps a
    background page's rendering idle, and Playwright waits on it for
    every click (some 2 s each)."""
    page.bring_to_front()
    return page


def number(page, selector):
    text = page.locator(selector).inner_text().strip()
    return int(text) if text.isdigit() else -1


def wait_until(what, fn, timeout=WAIT_MS / 1000):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def shot(page, name):
    path = os.path.join(SHOTS, name)
    page.screenshot(path=path, full_page=True)
    print(f"     screenshot {os.path.relpath(path, ROOT)}")


def watch(page, name, errors):
    """JavaScript errors, console errors and failed requests become test failures."""
    page.on("pageerror", lambda e: errors.append(f"{name}: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"{name}: console: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{name}: {r.status} for {r.url}"))
    page.on("requestfailed", lambda r: errors.append(f"{name}: request failed: {r.url} {r.failure}"))


def chat_tests(run, ctx, errors):
    server = Server("chat_server")
    try:
        alice, bob = ctx.new_page(), ctx.new_page()
        for name, page in (("alice", alice), ("bob", bob)):
            watch(page, f"chat/{name}", errors)

        def loads():
            for page in (alice, bob):
                response = front(page).goto(server.url)
                assert response is not None and response.status == 200, response and response.status
                assert response.headers.get("content-type", "").startswith("text/html"), response.headers
                expect(page).to_have_title("wsserver chat")
                # chat_server turns deflate on: Chromium's offer was taken.
                expect(page.locator("#status")).to_have_text("connected (compressed)")
                expect(page.locator("#messages")).to_contain_text("Welcome to the wsserver chat!")

        def join():
            for page, name in ((alice, "Alice"), (bob, "Bob")):
                front(page).fill("#name", name)
                front(page).click("#join")
                expect(page.locator("#me")).to_have_text(f"You are {name}.")
                expect(page.locator("#message")).to_be_enabled()
            for page in (alice, bob):
                expect(page.locator("#people li")).to_have_text(["Alice", "Bob"])
                expect(page.locator("#people-count")).to_have_text("2")
            expect(alice.locator("#messages")).to_contain_text("Bob joined.")

        def message():
            front(alice).fill("#message", "Hello Bob, <b>this</b> is Alice \u2615")
            front(alice).press("#message", "Enter")
            for page in (bob, alice):
                line = page.locator("#messages li", has_text="this</b> is Alice")
                expect(line).to_have_count(1)
                expect(line.locator(".from")).to_have_text("Alice")
                expect(line).to_have_text("AliceHello Bob, <b>this</b> is Alice \u2615")  # text, not HTML
            expect(alice.locator("#message")).to_have_value("")
            front(bob).fill("#message", "Hi Alice!")
            front(bob).click("#send")
            expect(alice.locator("#messages li", has_text="Hi Alice!").locator(".from")).to_have_text("Bob")

        def stats():
            wait_until("statistics", lambda: number(alice, "#stat-connections") >= 2)
            before_in, before_out = number(alice, "#stat-messages_in"), number(alice, "#stat-messages_out")
            assert before_in > 0 and before_out > 0, (before_in, before_out)
            front(bob).fill("#message", "one more")
            front(bob).press("#message", "Enter")
            wait_until("messages in to grow", lambda: number(alice, "#stat-messages_in") > before_in, 3)
            wait_until("messages out to grow", lambda: number(alice, "#stat-messages_out") > before_out, 3)
            assert number(bob, "#stat-messages_in") > before_in

        def leave():
            shot(alice, "chat-alice.png")
            shot(bob, "chat-bob.png")
            bob.close()
            expect(alice.locator("#people li")).to_have_text(["Alice"])
            expect(alice.locator("#messages")).to_contain_text("Bob left.")

        if run.check("chat: the page loads from chat_server and connects (two pages)", loads):
            if run.check("chat: Alice and Bob join; both names in both presence lists", join):
                run.check("chat: a message from Alice's page arrives in Bob's (as text), and back", message)
                run.check("chat: the statistics pushed by the server move", stats)
                run.check("chat: Bob closes his page and leaves Alice's list", leave)
        alice.close()
    finally:
        status = server.stop()
    run.check("chat: chat_server exits 0 on SIGTERM", lambda: (status == 0) or (_ for _ in ()).throw(AssertionError(status)))


def workflows_tests(run, ctx, errors):
    server = Server("workflows_server")
    try:
        carol, dave = ctx.new_page(), ctx.new_page()
        for name, page in (("carol", carol), ("dave", dave)):
            watch(page, f"workflows/{name}", errors)

        def login():
            for page, name in ((carol, "Carol"), (dave, "Dave")):
                response = front(page).goto(server.url)
                assert response is not None and response.status == 200
                expect(page).to_have_title("wsserver workflows")
                front(page).fill("#pseudo", name)
                front(page).click("#login")
                expect(page.locator("#welcome")).to_have_text(f"Server reply: Welcome {name}")
                expect(page.locator("#status")).to_have_text("connected")
            for page in (carol, dave):
                expect(page.locator("#people li")).to_have_text(["Carol", "Dave"])

        def echo():
            front(carol).fill("#echo-text", "hello world")
            front(carol).click("#echo-send")
            expect(carol.locator("#echo-log li")).to_have_text(["echo:hello world"])
            time.sleep(0.3)
            expect(dave.locator("#echo-log li")).to_have_count(0)

        def routed():
            front(carol).fill("#routed-to", "Dave")
            front(carol).fill("#routed-text", "psst, Dave")
            front(carol).click("#routed-send")
            expect(dave.locator("#routed-log li")).to_have_text(["Carol →psst, Dave"])
            expect(carol.locator("#routed-log li")).to_have_text(["me → Dave:psst, Dave"])
            front(carol).fill("#routed-to", "Nobody")
            front(carol).fill("#routed-text", "hello?")
            front(carol).click("#routed-send")
            expect(carol.locator("#error")).to_have_text("nobody is logged in as Nobody")
            expect(carol.locator("#routed-log li")).to_have_count(1)

        def group():
            front(carol).click("#group-join")
            expect(carol.locator("#group-members")).to_have_text("member of lobby (1)")
            front(dave).click("#group-join")
            expect(dave.locator("#group-members")).to_have_text("member of lobby (2)")
            front(dave).fill("#group-text", "hi group")
            front(dave).click("#group-publish")
            for page in (carol, dave):
                expect(page.locator("#group-log li", has_text="hi group")).to_have_text(["Dave @lobby:hi group"])
            expect(dave.locator("#group-log")).to_contain_text("published to lobby: 2 receiver(s)")
            front(carol).click("#group-leave")
            expect(carol.locator("#group-log")).to_contain_text("left lobby")
            front(dave).fill("#group-text", "only me now")
            front(dave).click("#group-publish")
            expect(dave.locator("#group-log")).to_contain_text("published to lobby: 1 receiver(s)")
            time.sleep(0.3)
            expect(carol.locator("#group-log li", has_text="only me now")).to_have_count(0)

        def streamed():
            assert number(carol, "#tick-count") == 0
            front(carol).click("#stream-subscribe")
            expect(carol.locator("#stream-unsubscribe")).to_be_enabled()
            wait_until("a first tick", lambda: number(carol, "#tick-count") >= 1)
            first = number(carol, "#tick-count")
            time.sleep(2.0)
            got = number(carol, "#tick-count") - first
            assert 5 <= got <= 15, f"{got} ticks in 2 s (one per 200 ms expected)"
            assert number(dave, "#tick-count") == 0, "Dave did not subscribe"
            shot(carol, "workflows-carol.png")
            shot(dave, "workflows-dave.png")
            front(carol).click("#stream-unsubscribe")
            expect(carol.locator("#stream-subscribe")).to_be_enabled()
            time.sleep(0.3)
            stopped = number(carol, "#tick-count")
            time.sleep(0.8)
            assert number(carol, "#tick-count") == stopped, "ticks after unsubscribe"

        if run.check("workflows: Carol and Dave log in with pseudonyms (Welcome ..., both listed)", login):
            run.check("workflows: echo comes back to the sender only", echo)
            run.check("workflows: routed to Dave by pseudonym (and to nobody: an error)", routed)
            run.check("workflows: group join, publish to both members, leave", group)
            run.check("workflows: streamed ticks arrive every 200 ms to the subscriber only, stop after unsubscribe", streamed)
        carol.close()
        dave.close()
    finally:
        status = server.stop()
    run.check("workflows: workflows_server exits 0 on SIGTERM", lambda: (status == 0) or (_ for _ in ()).throw(AssertionError(status)))


def main():
    os.makedirs(SHOTS, exist_ok=True)
    run = Run()
    errors = []
    profile = tempfile.mkdtemp(prefix="wsserver-chromium-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1100, "height": 760},
            )
            try:
                print(f"chromium {ctx.browser.version if ctx.browser else '?'}, playwright driving {CHROMIUM}")
                chat_tests(run, ctx, errors)
                workflows_tests(run, ctx, errors)
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)

    def no_errors():
        assert not errors, "; ".join(errors)

    run.check("no JavaScript errors in any page", no_errors)
    print(f"{run.passed} passed, {run.failed} failed")
    return 0 if run.failed == 0 and run.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Resumable delivery and idempotent calls in Chromium against real daphne processes (issue 9).

The demo page connects with ``resume: true``: across a server restart it recovers the chat
messages it missed instead of reloading the room; past the history bound it is told and
reloads. An idempotent call whose reply is lost is retried with its key and runs once.
"""

from __future__ import annotations

import json
import secrets
import shutil

import pytest
from playwright.sync_api import expect

from tests.conftest import IN_CI
from tests.live import RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]

# A mark in the room's message list: reloading the room (chat.join's history) removes it.
MARK_ROOM = """() => {
  const mark = document.createElement("li");
  mark.id = "loaded-once";
  document.querySelector("#messages").append(mark);
}"""

TEXTS = """() => [...document.querySelectorAll("#messages li.message")]
  .map((li) => li.lastChild.textContent.trim())"""


def redis_env(sqlite_env: dict[str, str], redis_url: str, **settings) -> dict[str, str]:
    """Servers on the test Redis, under a key prefix of their own."""
    prefix = f"resume-{secrets.token_hex(3)}"
    limits = json.dumps({"PREFIX": prefix, **settings})
    return {**sqlite_env, "REDIS_URL": redis_url, "WSCOMMANDS_LIMITS": limits}


def away_while_ann_says(ann, bob, server, texts: list[str]) -> None:
    """Bob's server restarts; meanwhile Ann says `texts`; Bob's page comes back."""
    status = bob.page.locator("#status")
    server.stop()
    expect(status).not_to_have_attribute("data-state", "ready")
    for text in texts:
        ann.say(text)
        expect(ann.page.locator("#messages")).to_contain_text(text)
    server.start()
    expect(status).to_have_attribute("data-state", "ready", timeout=30_000)


def test_a_restart_recovers_the_missed_chat_messages(daphne, demo_pages, sqlite_env, redis_url):
    """Bob's process restarts while Ann chats: his page gets every message, in order, unreloaded."""
    env = redis_env(sqlite_env, redis_url)
    a, b = daphne(env), daphne(env)
    ann = demo_pages(a).sign_up("ann").open()
    bob = demo_pages(b).sign_up("bob").open()
    ann.say("before the restart")
    expect(bob.page.locator("#messages")).to_contain_text("before the restart")
    bob.page.evaluate(MARK_ROOM)

    missed = ["missed one", "missed two", "missed three"]
    away_while_ann_says(ann, bob, b, missed)
    bob.page.wait_for_function(f"() => ({TEXTS})().includes('missed three')")
    texts = bob.page.evaluate(TEXTS)
    assert texts[-4:] == ["before the restart", *missed], "every missed message, in order, once"
    expect(bob.page.locator("#loaded-once")).to_have_count(1)  # the room was not reloaded
    assert bob.page.evaluate("demo.resyncs") == []
    verdicts = bob.page.evaluate("demo.resumes.at(-1)")
    assert verdicts["group:lobby"]["recovered"] is True
    assert verdicts["all"]["recovered"] is True
    assert verdicts[f"user:{bob.page.evaluate('demo.client.user.id')}"]["recovered"] is True

    # The room came back with the resume (the server re-joined it): chat goes on both ways.
    bob.say("back after the restart")
    expect(ann.page.locator("#messages")).to_contain_text("back after the restart")
    ann.say("welcome back")
    expect(bob.page.locator("#messages")).to_contain_text("welcome back")


def test_away_past_the_history_bound_the_page_is_told_and_reloads(
    daphne, demo_pages, sqlite_env, redis_url
):
    """HISTORY_SIZE 2, four messages missed: resync (too_far_behind), and the room reloads."""
    env = redis_env(sqlite_env, redis_url, HISTORY_SIZE=2)
    a, b = daphne(env), daphne(env)
    ann = demo_pages(a).sign_up("ann").open()
    bob = demo_pages(b).sign_up("bob").open()
    bob.page.evaluate(MARK_ROOM)

    missed = [f"too many {n}" for n in range(1, 5)]
    away_while_ann_says(ann, bob, b, missed)
    expect(bob.page.locator("#loaded-once")).to_have_count(0)  # reloaded
    bob.page.wait_for_function(f"() => ({TEXTS})().includes('too many 4')")
    assert bob.page.evaluate(TEXTS)[-4:] == missed, "the room's last messages, from the reload"
    assert {"stream": "group:lobby", "reason": "too_far_behind"} in bob.page.evaluate(
        "demo.resyncs"
    )


def test_redis_restarted_empty_the_page_is_told_history_is_gone_and_reloads(
    daphne, demo_pages, sqlite_env
):
    """Redis loses everything (and the process restarts): resync history_lost, room reloaded."""
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = RedisServer().start()
    try:
        server = daphne({**sqlite_env, "REDIS_URL": redis.url})
        bob = demo_pages(server).sign_up("bob").open()
        bob.say("said before redis restarted")
        expect(bob.page.locator("#messages")).to_contain_text("said before redis restarted")
        bob.page.evaluate(MARK_ROOM)
        status = bob.page.locator("#status")
        server.stop()
        expect(status).not_to_have_attribute("data-state", "ready")
        redis.stop()
        redis.start()  # empty: nothing is saved
        server.start()
        expect(status).to_have_attribute("data-state", "ready", timeout=30_000)
        expect(bob.page.locator("#loaded-once")).to_have_count(0)  # reloaded
        resyncs = bob.page.evaluate("demo.resyncs")
        assert {"stream": "group:lobby", "reason": "history_lost"} in resyncs
        # `all` never had a push: its position was "no push yet" and nothing of it was lost.
        assert {"stream": "all", "reason": "history_lost"} not in resyncs
        verdict = bob.page.evaluate("demo.resumes.at(-1)['group:lobby']")
        assert (verdict["recovered"], verdict["reason"]) == (False, "history_lost")
        expect(bob.page.locator("#messages")).to_contain_text("said before redis restarted")
        bob.say("said after redis restarted")
        expect(bob.page.locator("#messages")).to_contain_text("said after redis restarted")
    finally:
        redis.stop()


LOSSY_CLIENT = """async () => {
  const { WSCommands } = await import("/static/wscommands/wscommands.js");
  // The network loses a reply: the first frame answering `window.lose` closes the socket
  // instead of reaching the client (the server ran the command; the client cannot know).
  window.lose = null;
  window.frames = [];
  class Lossy extends WebSocket {
    send(data) {
      frames.push(JSON.parse(data));
      super.send(data);
    }
    set onmessage(handler) {
      super.onmessage = handler && ((event) => {
        if (lose !== null && lose in JSON.parse(event.data)) {
          lose = null;
          this.close();
          return;
        }
        handler(event);
      });
    }
    get onmessage() {
      return super.onmessage;
    }
  }
  const reconnect = { initialDelay: 50, maxDelay: 200 };
  window.lossy = new WSCommands({ WebSocket: Lossy, reconnect });
  await lossy.connect();
}"""


def test_an_idempotent_call_whose_reply_was_lost_runs_once(daphne, demo_pages):
    """Retried with the same key after the reconnect, answered from the server's record."""
    guest = demo_pages(daphne()).open()
    page = guest.page
    page.evaluate(LOSSY_CLIENT)
    got = page.evaluate(
        """async () => {
        const before = await lossy.call("counter.get");
        lose = "counter.increment";
        const once = await lossy.call("counter.increment", { amount: 1 }, { idempotent: true });
        const after = await lossy.call("counter.get");
        lose = "counter.increment";
        let plain;
        try {
          plain = await lossy.call("counter.increment", { amount: 1 });
        } catch (e) {
          plain = e.code;
        }
        const final = await lossy.call("counter.get");
        const increments = frames.filter((f) => "counter.increment" in f);
        return { before, once, after, plain, final, increments };
    }"""
    )
    before = got["before"]
    assert got["once"] == before + 1
    assert got["after"] == before + 1, "sent twice, ran once"
    first, retry, plain = got["increments"]
    assert retry == first, "the retry is the same frame: same idempotency_key"
    assert len(first["idempotency_key"]) == 32
    assert "idempotency_key" not in plain
    assert got["plain"] == "disconnected", "a call that is not idempotent is not sent again"
    assert got["final"] == before + 2, "it ran, once"


SESSION_ID_CLIENT = """async () => {
  const { WSCommands } = await import("/static/wscommands/wscommands.js");
  const reconnect = { initialDelay: 100, maxDelay: 500 };
  window.sid = new WSCommands({ authenticate: "session_id", resume: true, reconnect });
  window.sidSeen = [];
  window.sidResumes = [];
  sid.on("chat_message", (m) => sidSeen.push(m.text));
  sid.onresumed((verdicts) => sidResumes.push(verdicts));
  await sid.connect();
  await sid.call("chat.join", { room: "sid-room" });
}"""


def test_the_session_id_flow_resumes_after_authenticate(daphne, demo_pages, sqlite_env, redis_url):
    """authenticate first, then the resume: the user's stream and the room are recovered."""
    env = redis_env(sqlite_env, redis_url)
    a, b = daphne(env), daphne(env)
    bob = demo_pages(a).sign_up("bob").open()
    ann = demo_pages(b).sign_up("ann").open()
    ann.page.evaluate(SESSION_ID_CLIENT)
    bob.page.evaluate("demo.client.call('chat.join', { room: 'sid-room' })")
    b.stop()
    ann.page.wait_for_function("() => !sid.is_connected()")
    say = "(text) => demo.client.call('chat.say', { room: 'sid-room', text })"
    for text in ("sid one", "sid two"):
        bob.page.evaluate(say, text)
    b.start()
    ann.page.wait_for_function("() => sid.is_connected() && sidResumes.length === 1")
    assert ann.page.evaluate("sidSeen") == ["sid one", "sid two"]
    verdicts = ann.page.evaluate("sidResumes[0]")
    user_id = ann.page.evaluate("sid.user.id")
    assert verdicts["group:sid-room"]["recovered"] is True
    assert verdicts[f"user:{user_id}"]["recovered"] is True

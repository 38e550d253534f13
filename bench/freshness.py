#!/usr/bin/env python3
"""Freshness of the embedded stack, measured from outside through the web's HTTP endpoints.

Run by bench/freshness.sh (which starts ow-web on a fresh state directory, with OverFast
replayed from a directory holding the same recorded body under every battletag used here).

1. Look-ups: for each of N new battletags, do what a user and the page script do:
   `GET /search?q=Name%23NNNN` (redirected to the player page, which writes the player request),
   then follow the look-up like `ow-web/static/app.js` until the page shows the stats:
   * `--follow poll`: the old script: `GET` the status endpoint every `--poll-ms`, reload the
     page when the status version changed;
   * `--follow long-poll`: the new script: `GET status?version=V&wait_ms=...`, which answers
     as soon as the version is no longer V (or after the wait), then reload.
   The time is from the search to the page (with its hero table) received. A watcher thread
   polls the status endpoint every millisecond meanwhile, to tell when the stats became visible
   in the web's stores, so that each look-up splits into hops:
     request  — the search and the page that writes the player request
     producer — the request written → the fetch done (the profile's `fetched_at`, written by the
                producer into the raw event)
     pipeline — the fetch done (raw event) → the stats visible in the web's stores (processor,
                its commit, the web's consumption)
     page     — visible in the stores → the page with the stats received (the page's wait, the
                reload)
2. Raw event → visible: for each player, `POST /players/{id}/refresh`; the producer fetches again
   (answered at once) and writes a raw event whose `fetched_at` is the fetch's end; the time is
   from that `fetched_at` to the status endpoint (an interactive query of the web's profile
   store) showing it, polled every millisecond.

Prints a Markdown table; `--json FILE` keeps every sample.
"""

import argparse
import http.client
import json
import math
import re
import statistics
import sys
import threading
import time
import urllib.parse


def now_ms():
    return time.time() * 1000.0


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host, port, timeout=60):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, headers=headers or {})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, dict(r.getheaders()), body
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def json(self, path):
        status, _, body = self.request("GET", path, {"Accept": "application/json"})
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
        return json.loads(body)


def attr(html, name):
    m = re.search(name + r'="([^"]*)"', html)
    return m.group(1) if m else None


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    # Nearest rank: the smallest value with at least p % of the samples at or below it.
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def summary(values):
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


class Watcher(threading.Thread):
    """Polls a player's status every `every_ms` until told to stop; keeps the first time each
    condition held."""

    def __init__(self, host, port, player, every_ms=1.0, fetched_after=None):
        super().__init__(daemon=True)
        self.client = Client(host, port)
        self.player = player
        self.every = every_ms / 1000.0
        self.fetched_after = fetched_after
        self.stop = threading.Event()
        self.stats_visible_at = None
        self.fetched_visible_at = None
        self.fetched_at = None

    def run(self):
        path = f"/api/players/{self.player}/status"
        while not self.stop.is_set():
            try:
                s = self.client.json(path)
            except Exception:  # the server is busy or restarting: try again
                time.sleep(self.every)
                continue
            t = now_ms()
            f = s.get("fetched_at")
            if f is not None and (self.fetched_after is None or f != self.fetched_after):
                if self.fetched_visible_at is None:
                    self.fetched_visible_at, self.fetched_at = t, f
            if s.get("has_stats") and self.stats_visible_at is None and f is not None and (
                self.fetched_after is None or f != self.fetched_after
            ):
                self.stats_visible_at = t
            if self.stats_visible_at is not None and self.fetched_visible_at is not None:
                return
            time.sleep(self.every)


def look_up(c, host, port, name, number, follow, poll_ms, wait_ms, deadline_s):
    player = f"{name}-{number}"
    watcher = Watcher(host, port, player)
    watcher.start()
    t0 = now_ms()
    q = urllib.parse.quote(f"{name}#{number}")
    status, headers, _ = c.request("GET", f"/search?q={q}")
    if status not in (301, 302, 303, 307, 308):
        raise RuntimeError(f"search {player}: HTTP {status}")
    page_path = headers.get("location") or headers.get("Location")
    status, _, body = c.request("GET", page_path)
    t_requested = now_ms()
    html = body.decode("utf-8", "replace")
    reloads = 0
    while True:
        if 'data-sortable' in html:
            break
        if now_ms() - t0 > deadline_s * 1000:
            raise RuntimeError(f"{player}: no stats on the page after {deadline_s} s")
        url = attr(html, "data-status-url")
        version = attr(html, "data-status-version")
        if follow == "poll":
            # app.js before: a timer of POLL_MS, then the status; reload when the version changed.
            while True:
                time.sleep(poll_ms / 1000.0)
                s = c.json(url)
                if s["version"] != version or not s.get("polling", True):
                    break
        else:
            while True:
                v = urllib.parse.quote(version or "")
                s = c.json(f"{url}?version={v}&wait_ms={wait_ms}")
                if s["version"] != version or not s.get("polling", True):
                    break
        status, _, body = c.request("GET", page_path)
        html = body.decode("utf-8", "replace")
        reloads += 1
    t_done = now_ms()
    watcher.join(timeout=5)
    watcher.stop.set()
    fetched_at = watcher.fetched_at
    visible = watcher.stats_visible_at
    return {
        "player": player,
        "total_ms": t_done - t0,
        "request_ms": t_requested - t0,
        "producer_ms": (fetched_at - t_requested) if fetched_at else None,
        "pipeline_ms": (visible - fetched_at) if (visible and fetched_at) else None,
        "page_ms": (t_done - visible) if visible else None,
        "reloads": reloads,
    }


def refresh(c, host, port, player, deadline_s):
    before = c.json(f"/api/players/{player}/status").get("fetched_at")
    watcher = Watcher(host, port, player, fetched_after=before)
    watcher.start()
    status, _, body = c.request(
        "POST",
        f"/players/{player}/refresh",
        {"Sec-Fetch-Site": "same-origin", "Content-Length": "0"},
    )
    if status not in (302, 303):
        watcher.stop.set()
        raise RuntimeError(f"refresh {player}: HTTP {status}: {body[:200]!r}")
    watcher.join(timeout=deadline_s)
    watcher.stop.set()
    if watcher.fetched_visible_at is None:
        raise RuntimeError(f"refresh {player}: the new fetch never became visible")
    return {
        "player": player,
        "raw_to_visible_ms": watcher.fetched_visible_at - watcher.fetched_at,
    }


def fmt(v):
    return "—" if v != v else f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:18090")
    ap.add_argument("--players", type=int, default=100)
    ap.add_argument("--name", default="Fresh")
    ap.add_argument("--follow", choices=["poll", "long-poll"], default="long-poll")
    ap.add_argument("--poll-ms", type=float, default=2000)
    ap.add_argument("--wait-ms", type=int, default=25000)
    ap.add_argument("--deadline-s", type=float, default=60)
    ap.add_argument("--refreshes", type=int, default=None, help="default: --players")
    ap.add_argument("--json")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.base)
    host, port = u.hostname, u.port
    c = Client(host, port)

    lookups = []
    for i in range(a.players):
        r = look_up(c, host, port, f"{a.name}{i}", 10000 + i, a.follow, a.poll_ms, a.wait_ms, a.deadline_s)
        lookups.append(r)
        print(f"look-up {r['player']}: {r['total_ms']:.0f} ms", file=sys.stderr)
    refreshes = []
    n = a.players if a.refreshes is None else a.refreshes
    for i in range(n):
        player = f"{a.name}{i % a.players}-{10000 + i % a.players}"
        r = refresh(c, host, port, player, a.deadline_s)
        refreshes.append(r)
        print(f"refresh {player}: {r['raw_to_visible_ms']:.1f} ms", file=sys.stderr)

    rows = [("look-up: search → stats on the page", [r["total_ms"] for r in lookups])]
    for hop, key in [
        ("  hop request (search, page, request written)", "request_ms"),
        ("  hop producer (page received → fetch done; < 0: done before the page arrived)", "producer_ms"),
        ("  hop pipeline (raw event → stats in the web's stores)", "pipeline_ms"),
        ("  hop page (stores → page with the stats)", "page_ms"),
    ]:
        rows.append((hop, [r[key] for r in lookups if r[key] is not None]))
    rows.append(("raw event → visible in the web's store (refresh)", [r["raw_to_visible_ms"] for r in refreshes]))
    print("| ms | n | p50 | p95 | p99 | max | mean |")
    print("|---|---|---|---|---|---|---|")
    for label, values in rows:
        s = summary(values)
        print(f"| {label} | {s['n']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['p99'])} | {fmt(s['max'])} | {fmt(s['mean'])} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"lookups": lookups, "refreshes": refreshes, "args": vars(a)}, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A JSON-RPC 2.0 client of `kurer daemon`, written from docs/client.md alone (socket and json
of Python's standard library, nothing of ours), driving two daemons: anna's and bob's.

usage: daemon_rpc.py ANNA_SOCKET BOB_SOCKET

Checks: send and receive between the two homes through the daemons, the subscription's
notifications, history, verify, whoami, status; then malformed requests (bad JSON, a wrong
jsonrpc version, no method, an unknown method, wrong parameter types, a huge line, deep
nesting, binary junk, a client gone in the middle of a line, many clients at once) get their
JSON-RPC error or a closed connection, and the daemon still answers after each. Every wait is
bounded. Exit 0 when every check passed."""
import json
import os
import socket
import sys
import time

FAILED = []


def check(name, cond, detail=""):
    if cond:
        print("ok   " + name)
    else:
        print("FAIL " + name + (": " + str(detail) if detail else ""))
        FAILED.append(name)


class Client:
    def __init__(self, path, timeout=60):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.next_id = 0
        self.notes = []

    def send_raw(self, data):
        self.s.sendall(data)

    def line(self, timeout):
        """The next line as JSON, or None when the daemon closed the connection."""
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line in %.0f s" % timeout)
            self.s.settimeout(left)
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw.decode("utf-8"))

    def response(self, timeout=60):
        """The next response (notifications on the way are kept in self.notes)."""
        while True:
            m = self.line(timeout)
            if m is None or "id" in m:
                return m
            self.notes.append(m)

    def call(self, method, params=None, timeout=60):
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            req["params"] = params
        self.send_raw((json.dumps(req) + "\n").encode("utf-8"))
        r = self.response(timeout)
        log = os.environ.get("DAEMON_RPC_TRANSCRIPT")
        if log:  # the exchanges, for docs/client.md's examples
            with open(log, "a", encoding="utf-8") as f:
                f.write("--> " + json.dumps(req, ensure_ascii=False) + "\n")
                for n in self.notes:
                    f.write("<-- " + json.dumps(n, ensure_ascii=False) + "\n")
                f.write("<-- " + json.dumps(r, ensure_ascii=False) + "\n")
        if r is not None and r.get("id") != self.next_id:
            raise ValueError("response for another id: %r" % r)
        return r

    def wait_note(self, method, timeout):
        end = time.monotonic() + timeout
        while True:
            for i, n in enumerate(self.notes):
                if n.get("method") == method:
                    return self.notes.pop(i)
            left = end - time.monotonic()
            if left <= 0:
                return None
            m = self.line(left)
            if m is None:
                return None
            if "id" not in m:
                self.notes.append(m)

    def close(self):
        self.s.close()


def error_code(r):
    return r.get("error", {}).get("code") if isinstance(r, dict) else None


def still_answers(path, name):
    c = Client(path, 20)
    r = c.call("status", {}, 20)
    c.close()
    check(name + ": the daemon still answers", r is not None and "result" in r, r)


def conversation(anna_path, bob_path):
    anna, bob = Client(anna_path), Client(bob_path)
    me = anna.call("whoami")
    check("whoami", me["result"]["user"] == "anna@fm.dk" and me["result"]["enrolled"] is True, me)
    st = anna.call("status")
    check("status", st["result"]["state"] in ("online", "connecting", "waiting")
          and st["result"]["user"] == "anna@fm.dk" and "daemon" in st["result"], st)
    sub = bob.call("subscribe", {"events": ["message", "state"]})
    check("subscribe", sub["result"]["me"] == "bob@sk.dk"
          and sorted(sub["result"]["events"]) == ["message", "state"], sub)
    text = "Mødet er flyttet til 14. \u2028 line two"
    r = anna.call("send", {"to": "bob@sk.dk", "level": "RESTRICTED", "text": text,
                           "timeout": 30}, 60)
    check("send", "result" in r and r["result"]["to"] == "bob@sk.dk"
          and r["result"]["level"] == "RESTRICTED", r)
    n = bob.wait_note("message", 30)
    check("message notification", n is not None and n["params"]["text"] == text
          and n["params"]["peer"] == "anna@fm.dk" and n["params"]["level"] == "RESTRICTED"
          and n["params"]["state"] == "received" and n["params"]["outgoing"] is False, n)
    r = bob.call("send", {"to": "anna@fm.dk", "text": "reply"}, 60)
    check("reply", "result" in r and r["result"]["level"] == "UNCLASSIFIED", r)
    h = bob.call("history", {"with": "anna@fm.dk"})
    texts = [m.get("text") for m in h["result"]["messages"]]
    check("history", h["result"]["me"] == "bob@sk.dk" and texts == [text, "reply"]
          and h["result"]["next"] is None, h)
    h = anna.call("history", {"limit": 1})
    check("history paged", len(h["result"]["messages"]) == 1 and h["result"]["next"] == 1, h)
    h2 = anna.call("history", {"offset": h["result"]["next"]})
    check("history second page", [m["state"] for m in h2["result"]["messages"]] == ["received"]
          and h2["result"]["next"] is None, h2)
    v = anna.call("verify", {"user": "bob@sk.dk"}, 60)
    devs = v["result"]["devices"]
    check("verify", len(devs) == 1 and devs[0]["status"] == "valid"
          and len(devs[0]["safety_number"]) == 60 and devs[0]["clearance"] == "RESTRICTED", v)
    r = anna.call("send", {"to": "bob@sk.dk", "level": "CONFIDENTIAL", "text": "x"}, 60)
    check("refusal is a kurer error", error_code(r) == -32000
          and r["error"]["data"]["name"] == "ECLEARANCE"
          and "clearance of bob@sk.dk" in r["error"]["message"], r)
    r = anna.call("send", {"to": "anna@fm.dk", "text": "x"})
    check("send to self refused", error_code(r) == -32000
          and r["error"]["data"]["name"] == "EINVAL", r)
    r = anna.call("flush_outbox", {"timeout": 30}, 60)
    check("flush_outbox", r.get("result") == {"outbox": 0}, r)
    r = anna.call("outbox", {})
    check("outbox", r.get("result") == {"outbox": [], "truncated": False}, r)
    r = anna.call("outbox_cancel", {"message_id": 999999})
    check("outbox_cancel of nothing", error_code(r) == -32000
          and r["error"]["data"]["name"] == "ENOTFOUND", r)
    r = anna.call("outbox_retry", {"message_id": 1})
    check("outbox_retry of an accepted one", error_code(r) == -32000
          and r["error"]["data"]["name"] == "ESTATE", r)
    r = anna.call("contacts", {})
    cs = r["result"]["contacts"]
    check("contacts", [c["user"] for c in cs] == ["bob@sk.dk"] and cs[0]["devices"] == 1
          and cs[0]["messages"] >= 2 and cs[0]["certificates"][0]["status"] == "valid", r)
    r = anna.call("conversations", {})
    cv = r["result"]["conversations"]
    check("conversations", len(cv) == 1 and cv[0]["peer"] == "bob@sk.dk"
          and cv[0]["received"] == 1 and cv[0]["sent"] >= 1, r)
    r = anna.call("outbox_retry", {"message_id": 1, "timeout": 5})
    check("outbox_retry's words", "accepted by the relay already" in
          r.get("error", {}).get("message", ""), r)
    r = anna.call("rekey", {})
    check("rekey of a valid certificate refused", error_code(r) == -32000
          and r["error"]["data"]["name"] == "ESTATE" and "--force" in r["error"]["message"], r)
    r = anna.call("rekey", {"force": "yes"})
    check("rekey: force is a boolean", error_code(r) == -32602, r)
    chain = os.path.abspath("bob.chain")
    r = anna.call("import", {"files": [{"path": chain, "name": "bob.chain"}]}, 60)
    res = r.get("result", {})
    check("import of a peer's chain", res.get("imported") == [
        {"file": "bob.chain", "kind": "peer_chain", "result": "imported", "user": "bob@sk.dk",
         "device": 1}] and res.get("enrolled") is True
          and res.get("lines") == ["bob.chain: kept as a peer certificate (bob@sk.dk device 1)"]
          and "connected" not in res, r)
    r = anna.call("import", {"files": [{"path": "bob.chain"}]})
    check("import: a relative path refused", error_code(r) == -32602, r)
    r = anna.call("import", {"files": []})
    check("import: no files refused", error_code(r) == -32602, r)
    r = anna.call("import", {"files": [{"path": chain, "evil": 1}]})
    check("import: an unknown member refused", error_code(r) == -32602, r)
    r = anna.call("import", {"files": [{"path": chain + ".missing", "name": "x.chain"}]})
    check("import: a file that is not there", error_code(r) == -32000
          and "cannot read x.chain" in r["error"]["message"]
          and r["error"]["data"].get("lines") == [], r)
    r = bob.call("unsubscribe", {})
    check("unsubscribe", r.get("result") == {}, r)
    anna.close()
    bob.close()


def malformed(path):
    bad = [
        ("bad JSON", b'{"jsonrpc":"2.0","id":1,"method":\n', -32700),
        ("not UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"st\xffatus"}\n', -32700),
        ("binary junk", bytes(range(0, 256)).replace(b"\n", b"") + b"\n", -32700),
        ("wrong version", b'{"jsonrpc":"1.0","id":1,"method":"status"}\n', -32600),
        ("no version", b'{"id":1,"method":"status"}\n', -32600),
        ("missing method", b'{"jsonrpc":"2.0","id":1}\n', -32600),
        ("method not a string", b'{"jsonrpc":"2.0","id":1,"method":7}\n', -32600),
        ("unknown method", b'{"jsonrpc":"2.0","id":1,"method":"rm -rf"}\n', -32601),
        ("params an array", b'{"jsonrpc":"2.0","id":1,"method":"status","params":[1]}\n', -32602),
        ("params a string", b'{"jsonrpc":"2.0","id":1,"method":"status","params":"x"}\n', -32602),
        ("wrong param type", b'{"jsonrpc":"2.0","id":1,"method":"send","params":'
         b'{"to":7,"text":"x"}}\n', -32602),
        ("missing param", b'{"jsonrpc":"2.0","id":1,"method":"send","params":{"to":"bob@sk.dk"}}\n',
         -32602),
        ("unknown param", b'{"jsonrpc":"2.0","id":1,"method":"history","params":{"evil":1}}\n',
         -32602),
        ("negative timeout", b'{"jsonrpc":"2.0","id":1,"method":"receive","params":'
         b'{"timeout":-1}}\n', -32602),
        ("level unknown", b'{"jsonrpc":"2.0","id":1,"method":"send","params":'
         b'{"to":"bob@sk.dk","text":"x","level":"TOP"}}\n', -32602),
        ("user with capitals", b'{"jsonrpc":"2.0","id":1,"method":"verify","params":'
         b'{"user":"Bob@SK.dk"}}\n', -32602),
        ("NUL in a string", b'{"jsonrpc":"2.0","id":1,"method":"send","params":'
         b'{"to":"bob@sk.dk","text":"a\\u0000b"}}\n', -32700),
        ("duplicate key", b'{"jsonrpc":"2.0","id":1,"id":2,"method":"status"}\n', -32700),
        ("id an object", b'{"jsonrpc":"2.0","id":{"a":1},"method":"status"}\n', -32600),
        ("batch", b'[{"jsonrpc":"2.0","id":1,"method":"status"}]\n', -32600),
        ("a scalar", b'42\n', -32600),
        ("deep nesting", b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"a":' +
         b"[" * 100000 + b"]" * 100000 + b"}}\n", -32600),
        ("extra member", b'{"jsonrpc":"2.0","id":1,"method":"status","x":1}\n', -32600),
        ("subscribe to nothing known", b'{"jsonrpc":"2.0","id":1,"method":"subscribe","params":'
         b'{"events":["receipt_of_doom"]}}\n', -32602),
    ]
    c = Client(path, 30)
    for name, data, code in bad:
        c.send_raw(data)
        r = c.response(30)
        check(name, error_code(r) == code, r)
    # A notification (no id) is not answered; the next request is.
    c.send_raw(b'{"jsonrpc":"2.0","method":"status"}\n')
    r = c.call("status")
    check("notification unanswered", r is not None and "result" in r, r)
    r = c.call("status", None)
    check("params may be left out", r is not None and "result" in r, r)
    c.close()

    # A line over 1 MiB: an error, then the connection is closed.
    c = Client(path, 5)
    try:
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"send","params":{"text":"' +
                   b"a" * (2 * 1024 * 1024))
    except OSError:
        pass
    try:
        r = c.response(30)
        closed = c.line(30) is None if r is not None else True
    except OSError:
        r, closed = None, True
    check("huge line refused", (r is None or error_code(r) == -32600) and closed, r)
    c.close()
    still_answers(path, "huge line")

    # A request a byte at a time, and 20 requests in one write: each answered, in order.
    c = Client(path, 30)
    for b in b'{"jsonrpc":"2.0","id":"drip","method":"status"}\n':
        c.send_raw(bytes([b]))
    r = c.response(30)
    check("a request a byte at a time", r is not None and r.get("id") == "drip"
          and "result" in r, r)
    c.send_raw(b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"status"}\n' % i for i in range(20)))
    ids = []
    for _ in range(20):
        r = c.response(30)
        ids.append(r.get("id") if r else None)
    check("20 requests in one write", sorted(ids) == list(range(20)), ids)
    c.close()

    # A client gone in the middle of a line.
    c = Client(path, 30)
    c.send_raw(b'{"jsonrpc":"2.0","id":1,"meth')
    c.close()
    still_answers(path, "disconnect mid-line")

    # Junk with newlines everywhere, then a good request on the same connection.
    c = Client(path, 30)
    junk = bytes((i * 37 + 11) % 256 for i in range(4096))
    c.send_raw(junk + b"\n")
    errors = 0
    c.send_raw(b'{"jsonrpc":"2.0","id":"last","method":"status"}\n')
    r = c.response(30)
    while r is not None and r.get("id") != "last":
        errors += 1
        r = c.response(30)
    segments = (junk + b"\n").split(b"\n")[:-1]
    want = sum(1 for seg in segments if (seg[:-1] if seg.endswith(b"\r") else seg))
    check("junk lines each get an error", errors == want and r is not None
          and "result" in r, (errors, want, r))
    c.close()

    # Many clients at once: at most 32 are served, the rest are closed; none crashes it.
    many = []
    for _ in range(40):
        try:
            many.append(Client(path, 10))
        except OSError:
            pass
    answered = 0
    for m in many:
        try:
            r = m.call("status", {}, 10)
            answered += r is not None and "result" in r
        except (OSError, TimeoutError, ValueError):
            pass
        m.close()
    check("many clients: 32 served", answered == 32, answered)
    still_answers(path, "many clients")


def main():
    anna_path, bob_path = sys.argv[1], sys.argv[2]
    conversation(anna_path, bob_path)
    malformed(anna_path)
    if FAILED:
        print("%d failed: %s" % (len(FAILED), ", ".join(FAILED)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Integration tests of what the dashboard offers and colours by (docs/api.md): GET /api/v1/values,
GET /api/v1/sla/rules (towerd serve --sla-rules), and the view filters customer=, reason=, channel=,
sla=, sort= and the case-insensitive warehouse= and carrier=, with 400s naming the parameter for bad
values and hostile ones. A store folded offline (`towerd gen` + orders of our own, `towerd fold`), no NATS.

usage: test_facets.py TOWERD [TEST_NAME_SUBSTRING...]
"""

import calendar
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_server as ts  # noqa: E402  (its Server and http helpers; its own tests are not loaded here)

TOWERD = None
SEED = int(os.environ.get("TOWER_IT_SEED", "20261206"))
D = None


def rfc3339(s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))


def ts_ns(s):
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 10 ** 9 + int((frac + "000000000")[:9])


def own_lines(now_s):
    """Twelve approved orders at DC-North (mixed case on purpose), customers FX-Cust-0..2, channels EDI and SERVICE."""
    out = []
    for k in range(12):
        oid, at = "FX-%02d" % k, now_s - 3600 * (k + 1)
        src = {"system": "erp", "instance": "fx"}
        out.append({"eventId": "fx-c-%d" % k, "occurredAt": rfc3339(at - 60), "source": src, "orderId": oid,
                    "orderCreated": {"customerId": "FX-Cust-%d" % (k % 3), "channel": "EDI" if k % 2 else "SERVICE",
                                     "lines": [{"sku": "SKU-FX", "qty": 1}], "warehouseId": "DC-North"}})
        out.append({"eventId": "fx-a-%d" % k, "occurredAt": rfc3339(at), "source": src, "orderId": oid,
                    "orderApproved": {"warehouseId": "DC-North", "carrierId": "Carrier-X" if k < 6 else "carrier-y"}})
    return [json.dumps(e, separators=(",", ":")).encode() for e in out]


def setUpModule():
    global D
    D = type("Fixture", (), {})()
    D.t = fx.Towerd(TOWERD)
    D.root = fx.make_tempdir("tower-it-facets-")
    D.t.cwd = D.root
    trace = os.path.join(D.root, "trace.ndjson")
    D.t.gen(trace, SEED, fx.scaled(200, 60))
    with open(trace, "ab") as f:
        f.write(b"\n" + b"\n".join(own_lines(int(time.time()))) + b"\n")
    D.data = os.path.join(D.root, "store")
    D.t.fold(D.data, trace)
    D.web = os.path.join(D.root, "web")
    os.makedirs(D.web)
    with open(os.path.join(D.web, "index.html"), "w") as f:
        f.write("<!doctype html><title>fx</title>\n")
    D.rules = os.path.join(D.root, "sla.rules")
    with open(D.rules, "w") as f:
        f.write("[rule release]\nwithin = 30m\n[rule release warehouse=dc-2]\nwithin = 10m\nseverity = critical\n"
                "[rule pod]\nenabled = false\n")
    D.server = ts.Server(D.t, D.data, D.web, os.path.join(D.root, "serve.log"),
                         args=["--no-nats", "--sla-rules", D.rules]).start()


def tearDownModule():
    if D is not None and getattr(D, "server", None) is not None:
        D.server.kill()
    if D is not None:
        fx.remove_tempdir(D.root)


class FacetsTest(unittest.TestCase):
    maxDiff = 3000

    def get(self, path, **params):
        return D.server.get(ts.q(path, **params))

    def ok(self, path, **params):
        r = self.get(path, **params)
        self.assertEqual(r.status, 200, r.describe())
        return r.json()

    def bad(self, field, path, **params):
        r = self.get(path, **params)
        self.assertEqual(r.status, 400, r.describe())
        err = r.json()["error"]
        self.assertEqual((err["code"], err.get("field")), ("INVALID_PARAMETER", field), r.describe())
        self.assertIn(field, err["message"], r.describe())

    def items(self, view, **params):
        """Every item of a filtered view, page by page; the count said on the first page checked."""
        out, cursor, first = [], None, None
        while True:
            b = self.ok("/api/v1/views/" + view, state="all", limit=7, cursor=cursor, **params)
            first = first or b
            # ageSeconds is decided when read: two answers a second apart differ in it, so it is left out
            out += [{k: v for k, v in i.items() if k != "ageSeconds"} for i in b["items"]]
            cursor = b["nextCursor"]
            if cursor is None:
                break
        self.assertEqual(first["count"], len(out), "count of %s %s" % (view, params))
        self.assertEqual(len({i["key"] for i in out}), len(out), "an item twice in %s %s" % (view, params))
        return out

    def test_01_values(self):
        """The values present in the store: warehouses and carriers with counts (the breakdowns), reasons,
        customers, channels; per view with ?view=."""
        s = self.ok("/api/v1/summary")
        v = self.ok("/api/v1/values")
        want = {}
        for view in s["views"].values():
            for w, n in view["byWarehouse"].items():
                want[w] = want.get(w, 0) + n
        self.assertEqual(v["warehouses"], [{"id": k, "count": want[k]} for k in sorted(want)])
        self.assertIn("FX-Cust-1", v["customers"])
        self.assertEqual(v["customers"], sorted(v["customers"]))
        self.assertEqual(v["channels"], ["ECOMMERCE", "EDI", "SERVICE"])
        self.assertEqual(v["slaStates"], ["breached", "due_soon", "within", "none"])
        self.assertIsNone(v["view"])
        b = self.ok("/api/v1/values", view="blocked")
        self.assertEqual(b["view"], "blocked")
        reasons = {}
        for it in self.items("blocked"):
            for k in ("reason", "lastFailure"):
                if it.get(k):
                    reasons[it[k]] = reasons.get(it[k], 0) + 1
        self.assertEqual(b["reasons"], [{"id": k, "count": reasons[k]} for k in sorted(reasons)])
        ar = self.ok("/api/v1/values", view="awaiting_release")
        self.assertIn({"id": "DC-North", "count": 12}, ar["warehouses"])
        self.assertEqual({c["id"] for c in ar["carriers"]} >= {"Carrier-X", "carrier-y"}, True, ar["carriers"])
        for bad in ("nope", "", "blocked%00", "x" * 5000, "../../etc/passwd"):
            self.bad("view", "/api/v1/values", view=bad)

    def test_02_sla_rules(self):
        """The rules the server was started with, and per view the rule (and duration) its items are dated by."""
        r = self.ok("/api/v1/sla/rules")
        self.assertEqual(r["source"], "file")
        self.assertEqual(r["dueSoonShare"], 0.75)
        rel = [x for x in r["rules"] if x["name"] == "release"]
        self.assertEqual([(x["withinSeconds"], x["warehouse"], x["severity"]) for x in rel],
                         [(1800, None, "warning"), (600, "dc-2", "critical")])
        self.assertEqual((rel[0]["from"], rel[0]["to"], rel[0]["level"], rel[0]["enabled"]),
                         ("orderApproved", "orderReleased", "order", True))
        self.assertEqual(r["views"]["awaiting_release"], {"rule": "release", "withinSeconds": 1800, "alwaysBreached": False})
        self.assertEqual(r["views"]["missing_pod"]["withinSeconds"], None, "pod is disabled")
        self.assertEqual(r["views"]["sla_breaches"]["alwaysBreached"], True)
        self.assertEqual(r["views"]["anomalies"]["rule"], None)
        self.assertEqual(r["views"]["blocked"]["rule"], None, "the fold dates no blocked item")
        for it in self.items("blocked"):
            self.assertNotIn("slaDueAt", it, "a blocked item with a due: the rule of the view is wrong")
        # Without --sla-rules: the defaults; a bad file stops the server (exit 2).
        plain = ts.Server(D.t, D.data, D.web, os.path.join(D.root, "serve2.log"), args=["--no-nats"]).start()
        try:
            d = plain.get("/api/v1/sla/rules").json()
            self.assertEqual((d["source"], d["views"]["awaiting_release"]["withinSeconds"]), ("defaults", 900))
        finally:
            plain.stop()
        badf = os.path.join(D.root, "bad.rules")
        with open(badf, "w") as f:
            f.write("[rule release]\nwithin = soon\n")
        r = D.t.run("serve", "--no-nats", "--data", D.data, "--http", "127.0.0.1:%d" % fx.free_port(),
                    "--sla-rules", badf, timeout=30)
        self.assertEqual(r.rc, 2, r.describe())
        self.assertIn("bad.rules", r.err, r.describe())

    def test_03_case_insensitive_warehouse_carrier_customer(self):
        mine = self.items("awaiting_release", warehouse="DC-North")
        self.assertEqual(len(mine), 12)
        for spelled in ("dc-north", "DC-NORTH"):
            self.assertEqual(self.items("awaiting_release", warehouse=spelled), mine, spelled)
        x = self.items("awaiting_release", carrier="carrier-x")
        self.assertEqual(sorted(i["orderId"] for i in x), ["FX-%02d" % k for k in range(6)])
        self.assertEqual(self.items("awaiting_release", warehouse="dc-north", carrier="CARRIER-Y"),
                         [i for i in mine if i["carrierId"] == "carrier-y"])
        c1 = self.items("awaiting_release", customer="fx-cust-1")
        self.assertEqual(sorted(i["orderId"] for i in c1), ["FX-%02d" % k for k in range(12) if k % 3 == 1])
        self.assertEqual(self.items("awaiting_release", customer="FX-Cust-1"), c1)
        self.assertEqual(self.items("awaiting_release", customer="FX-Cust-9"), [])
        self.assertEqual(self.items("awaiting_release", warehouse="dc-nowhere"), [])

    def test_04_channel_reason_sla_filters(self):
        edi = self.items("awaiting_release", channel="edi", warehouse="DC-North")
        self.assertEqual(sorted(i["orderId"] for i in edi), ["FX-%02d" % k for k in range(12) if k % 2])
        svc = self.items("awaiting_release", channel="SERVICE", warehouse="DC-North")
        self.assertEqual(len(edi) + len(svc), 12)
        every = self.items("blocked")
        for it in every:
            r = it.get("reason") or it.get("lastFailure")
            if r:
                got = self.items("blocked", reason=r.lower())
                self.assertEqual(got, [i for i in every if r.lower() in
                                       (str(i.get("reason", "")).lower(), str(i.get("lastFailure", "")).lower())])
                break
        # The four SLA states split each view; each item is in the state its slaDueAt says.
        for view in ("awaiting_release", "missing_pod", "sla_breaches", "anomalies"):
            allv = self.items(view)
            parts = {}
            for state in ("breached", "due_soon", "within", "none"):
                t0 = time.time_ns()
                parts[state] = self.items(view, sla=state)
                t1 = time.time_ns()
                for it in parts[state]:
                    due = ts_ns(it["slaDueAt"]) if "slaDueAt" in it else None
                    since = ts_ns(it["since"])
                    if state == "none":
                        self.assertIsNone(due, it)
                    elif state == "breached":
                        self.assertLessEqual(due, t1, it)
                    else:
                        self.assertGreater(due, t0, it)
                        share = (t1 - since) / (due - since)
                        self.assertTrue(share >= 0.75 - 1e-3 if state == "due_soon" else share < 0.75 + 1e-3, (state, it))
            keys = sorted(i["key"] for p in parts.values() for i in p)
            self.assertEqual(keys, sorted(i["key"] for i in allv), "%s: the SLA states partition the view" % view)
        self.assertEqual(len(self.items("sla_breaches", sla="breached")), len(self.items("sla_breaches")))

    def test_05_sort(self):
        for view in ("awaiting_release", "missing_pod"):
            allv = self.items(view)
            for sort, key in (("warehouse", "warehouseId"), ("carrier", "carrierId")):
                got = self.items(view, sort=sort)
                self.assertEqual(sorted(i["key"] for i in got), sorted(i["key"] for i in allv))
                ids = [(i.get(key) is None, i.get(key) or "", ts_ns(i["since"])) for i in got]
                self.assertEqual(ids, sorted(ids), "%s sort=%s" % (view, sort))
            newest = [ts_ns(i["since"]) for i in self.items(view, sort="newest")]
            self.assertEqual(newest, sorted(newest, reverse=True), "%s sort=newest" % view)

    def test_06_bad_and_hostile_values(self):
        v = "/api/v1/views/awaiting_release"
        self.bad("channel", v, channel="FAX")
        self.bad("channel", v, channel="EDI%00")
        self.bad("sla", v, sla="late")
        self.bad("sla", v, sla="BREACHED")
        self.bad("sort", v, sort="random")
        self.bad("customer", v, customer="c" * 65)
        self.bad("customer", v, customer="a\x00b")
        self.bad("reason", v, reason="r" * 513)
        self.bad("reason", v, reason="\x00")
        for hostile in ("../../etc/passwd", "' OR 1=1 --", "<script>alert(1)</script>", "café 🚚", "%s%n%x",
                        "\\", "a" * 64):
            for name in ("customer", "reason", "warehouse", "carrier"):
                b = self.ok(v, state="all", **{name: hostile})
                self.assertEqual((b["count"], b["items"]), (0, []), "%s=%r" % (name, hostile))
        r = D.server.get(v + "?channel=" + urllib.parse.quote("é" * 40))
        self.assertEqual(r.status, 400, r.describe())
        self.assertTrue(D.server.alive(), D.server.log())


def main():
    return fx.main(sys.modules[__name__], seed=SEED)


if __name__ == "__main__":
    sys.exit(main())

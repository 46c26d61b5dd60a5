#!/usr/bin/env python3
"""Integration tests of `towerd reconcile` against a store a real projector fed from a real nats-server.

usage: test_reconcile.py TOWERD [TEST_NAME_SUBSTRING...]

A trace is published (`towerd publish`) and folded by the projector; a constructed ERP snapshot with one row of
each kind of disagreement among matching rows is compared through the example mapping: the exact report, --json,
--full, the metrics file, bad rows reported FILE:LINE, a bad mapping (exit 2); the example files agree but for
the one order the tower never heard of. With --publish (and `towerd serve`): a constructed disagreement becomes
an item of the mismatches view over REST, an acknowledgement through the API works on it, running the same
snapshot again publishes nothing, and a corrected snapshot clears it; a malformed row is reported and the rest
still published.
"""

import json
import os
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXAMPLES = os.path.join(SRC, "deploy", "import")
MAP = os.path.join(EXAMPLES, "erp-status.ini")
HEADER = "order_no;status;status_since;customer\n"

_n = [0]


def ev(typ, order=None, shipment=None, payload=None, at="2026-11-27T08:00:00Z", system="erp"):
    _n[0] += 1
    e = {"eventId": "rec-%d" % _n[0], "occurredAt": at, "source": {"system": system}, typ: payload or {}}
    if order:
        e["orderId"] = order
    if shipment:
        e["shipmentId"] = shipment
    return e


def order(oid, *types, shipment=None):
    """The events of an order: its own types, then shipment ones (packCompleted links the shipment)."""
    out = []
    for t in types:
        if t in ("orderCreated", "orderApproved", "orderReleased", "orderCancelled", "invoicePosted"):
            out.append(ev(t, order=oid, payload={"customerId": "C-1"} if t == "orderCreated" else None))
        elif t == "packCompleted":
            out.append(ev(t, order=oid, shipment=shipment, system="wms"))
        else:
            out.append(ev(t, shipment=shipment, system="carrier" if t != "shipmentConfirmed" else "wms"))
    return out


TRACE = (order("SO-OK1", "orderCreated", "orderApproved", "orderReleased")
         + order("SO-OK2", "orderCreated", "orderCancelled")
         + order("SO-INV", "orderCreated", "orderApproved", "orderReleased", "packCompleted", "shipmentConfirmed",
                 "invoicePosted", shipment="SH-INV")
         + order("SO-MM", "orderCreated", "orderApproved")
         + order("SO-POD", "orderCreated", "orderApproved", "orderReleased", "packCompleted", "shipmentConfirmed",
                 "deliveryCompleted", "podCaptured", shipment="SH-POD")
         + order("SO-CXL", "orderCreated", "orderApproved")
         + order("SO-OPEN", "orderCreated", "orderApproved")       # --full: open, not in the snapshot
         + order("SO-CLOSED", "orderCreated", "orderCancelled"))   # --full: closed, not expected

SNAPSHOT = (HEADER
            + "SO-OK1;RELEASED;27.11.2026 09:00;C-1\n"       # 2 agrees
            + "SO-OK2;CANCELLED;27.11.2026 09:00;C-1\n"      # 3 agrees
            + "SO-INV;INVOICED;27.11.2026 09:00;C-1\n"       # 4 agrees
            + "SO-MM;RELEASED;27.11.2026 09:00;C-1\n"        # 5 missing_milestone orderReleased
            + "SO-POD;SHIPPED;27.11.2026 09:00;C-1\n"        # 6 not_reflected podCaptured
            + "SO-CXL;CANCELLED;27.11.2026 09:00;C-1\n"      # 7 missing_milestone orderCancelled
            + "SO-NONE;RELEASED;27.11.2026 09:00;C-1\n"      # 8 unknown_order
            + "SO-OK1;SHIPPD;27.11.2026 09:00;C-1\n"         # 9 duplicate (first on line 2)
            + "SO-X;SHIPPD;27.11.2026 09:00;C-1\n"           # 10 unknown_status
            + "SO-\"Q;RELEASED;27.11.2026 09:00;C-1\n"       # 11 bad_row: a quote
            + "SO-Y;RELEASED\n"                              # 12 bad_row: columns
            + "SO Z;RELEASED;27.11.2026 09:00;C-1\n"         # 13 bad_row: not an id
            + "\n"
            + "SO-W;\x1b[2JSHIP\xe9;27.11.2026 09:00;C-1\n")  # 15 unknown_status, hostile bytes

A_MM = ("check the system's feed to the tower for this order: a rejected or lost event (towerctl dlq list), an "
        "outbox or import that did not run; re-send the event once found")
A_NR = ("check the system's inbound interface for this order (the POD, invoice or cancellation was not posted "
        "back), or whether the tower's event was wrong (towerctl order ID)")
A_UO = ("check that the order's events reach the tower (towerctl dlq list, the system's publisher or import); an "
        "order created after the tower's last event is caught up by the next run")
A_MS = ("check whether the system closed, archived or deleted the order without the closing milestone reaching "
        "the tower, or whether the snapshot is incomplete")
A_US = "add a status.VALUE line for it to the mapping's [reconcile] section, or fix the export"
A_BR = "fix the row in the export (or the mapping's columns)"
A_DU = "the snapshot lists the order twice: fix the export (only the first row was compared)"


def report(snap):
    return [
        "%s:5: SO-MM: missing_milestone: erp says RELEASED, which implies orderReleased; the tower has not seen "
        "orderReleased (stage APPROVED; seen: orderCreated, orderApproved). To do: %s." % (snap, A_MM),
        "%s:6: SO-POD: not_reflected: the tower has seen podCaptured at 2026-11-27T08:00:00Z (stage POD); erp says "
        "SHIPPED, which does not reflect it. To do: %s." % (snap, A_NR),
        "%s:7: SO-CXL: missing_milestone: erp says CANCELLED, which implies orderCancelled; the tower has not seen "
        "orderCancelled (stage APPROVED; seen: orderCreated, orderApproved). To do: %s." % (snap, A_MM),
        "%s:8: SO-NONE: unknown_order: erp says RELEASED; the tower has no event of order SO-NONE. To do: %s."
        % (snap, A_UO),
        "%s:9: SO-OK1: duplicate: the snapshot lists order SO-OK1 again (first on line 2). To do: %s." % (snap, A_DU),
        "%s:10: SO-X: unknown_status: erp says \"SHIPPD\", a status the mapping has no status.SHIPPD line for. "
        "To do: %s." % (snap, A_US),
        "%s:11: bad_row: MALFORMED: column 1: quote inside an unquoted field (quote the whole field). To do: %s."
        % (snap, A_BR),
        "%s:12: SO-Y: bad_row: MALFORMED: the row has 2 columns, the header 4 (a delimiter inside an unquoted "
        "field?). To do: %s." % (snap, A_BR),
        "%s:13: bad_row: column \"order_no\": \"SO Z\" is not an order id (1-64 characters of [A-Za-z0-9._:-]). "
        "To do: %s." % (snap, A_BR),
        "%s:15: SO-W: unknown_status: erp says \"?[2JSHIP?\", a status the mapping has no status.?[2JSHIP? line "
        "for. To do: %s." % (snap, A_US),
    ]


def metrics(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class Reconcile(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-reconcile-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.client = fx.NatsClient(self.nats.port)
        self.addCleanup(self.client.close)
        self.data = os.path.join(self.root, "data")
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start().wait_running()

    def write(self, name, text, mode="w"):
        path = os.path.join(self.root, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def rec(self, *args, check=None):
        return self.t.run("reconcile", "--data", self.data, *args, check=check)

    def feed(self, events):
        trace = self.write("trace.ndjson", "".join(json.dumps(e) + "\n" for e in events))
        r = self.t.publish(trace, check=0)
        self.assertEqual(r.summary["stored"], len(events), r.describe())
        fx.wait_caught_up(self.t, self.data, self.client, self.proj)

    def test_every_kind_report_json_full_metrics(self):
        self.feed(TRACE)
        snap = self.write("erp-status-20261127.csv", SNAPSHOT.encode("latin-1"), mode="wb")
        prom = os.path.join(self.root, "textfile", "reconcile-erp.prom")
        os.makedirs(os.path.dirname(prom))
        r = self.rec("-m", MAP, "--metrics-file", prom, snap, check=3)
        lines = r.out.splitlines()
        self.assertEqual(lines[:-1], report(snap), r.describe())
        self.assertEqual(lines[-1], "erp (erp-status): 13 rows, 3 matched, 10 disagreements, missing_milestone 2, "
                                    "not_reflected 1, unknown_order 1, unknown_status 2, bad_row 3, duplicate 1 "
                                    "(store at sequence %d)" % len(TRACE))
        m = metrics(prom)
        self.assertEqual(m['tower_reconcile_rows{system="erp"}'], 13)
        self.assertEqual(m['tower_reconcile_mismatches{system="erp",kind="missing_milestone"}'], 2)
        self.assertEqual(m['tower_reconcile_mismatches{system="erp",kind="bad_row"}'], 3)
        self.assertEqual(m['tower_reconcile_mismatches{system="erp",kind="missing_from_snapshot"}'], 0)
        self.assertGreater(m['tower_reconcile_last_run_timestamp_seconds{system="erp"}'], 1.7e9)
        self.assertEqual(os.listdir(os.path.dirname(prom)), ["reconcile-erp.prom"])  # no temporary file left
        # --json: one object per disagreement, then the summary; --full adds the open order it does not list.
        r = self.rec("-m", MAP, "--json", "--full", "--metrics-file", prom, snap, check=3)
        objs = [json.loads(x) for x in r.out.splitlines()]
        self.assertEqual(objs[0], {"file": snap, "line": 5, "orderId": "SO-MM", "kind": "missing_milestone",
                                   "system": "erp", "status": "RELEASED", "milestone": "orderReleased",
                                   "towerStage": "APPROVED",
                                   "message": "erp says RELEASED, which implies orderReleased; the tower has not "
                                              "seen orderReleased (stage APPROVED; seen: orderCreated, orderApproved)",
                                   "action": A_MM})
        human = ["%s:%s: %s%s: %s. To do: %s." % (o["file"], o["line"], o["orderId"] + ": " if "orderId" in o else "",
                                                  o["kind"], o["message"], o["action"]) for o in objs[:10]]
        self.assertEqual(human, report(snap))
        self.assertEqual(objs[10], {"file": snap, "orderId": "SO-OPEN", "kind": "missing_from_snapshot",
                                    "system": "erp", "towerStage": "APPROVED",
                                    "message": "the tower has order SO-OPEN open (stage APPROVED; seen: orderCreated, "
                                               "orderApproved); the erp snapshot does not list it",
                                    "action": A_MS})
        self.assertEqual(objs[11], {"summary": {
            "system": "erp", "mapping": "erp-status", "files": 1, "rows": 13, "matched": 3, "mismatches": 11,
            "byKind": {"missing_milestone": 2, "not_reflected": 1, "unknown_order": 1, "missing_from_snapshot": 1,
                       "unknown_status": 2, "bad_row": 3, "duplicate": 1},
            "appliedSeq": len(TRACE), "full": True}})
        self.assertEqual(len(objs), 12)
        self.assertEqual(metrics(prom)['tower_reconcile_mismatches{system="erp",kind="missing_from_snapshot"}'], 1)
        # Agreement: exit 0, and the metrics say so.
        good = self.write("good.csv", HEADER + "SO-OK1;RELEASED;;\nSO-INV;INVOICED;;\n")
        r = self.rec("-m", MAP, "--metrics-file", prom, good, check=0)
        self.assertEqual(r.out, "erp (erp-status): 2 rows, 2 matched, 0 disagreements (store at sequence %d)\n"
                         % len(TRACE))
        self.assertEqual(metrics(prom)['tower_reconcile_mismatches{system="erp",kind="missing_milestone"}'], 0)

    def test_examples_and_mapping_errors(self):
        erp = os.path.join(EXAMPLES, "erp-open-orders.csv")
        r = self.t.run("import", "--nats", self.nats.url, "-m", os.path.join(EXAMPLES, "erp-open-orders.ini"), erp,
                       check=0)
        fx.wait_caught_up(self.t, self.data, self.client, self.proj)
        snap = os.path.join(EXAMPLES, "erp-status.csv")
        r = self.rec("-m", MAP, "--json", snap, check=3)
        objs = [json.loads(x) for x in r.out.splitlines()]
        self.assertEqual([(o.get("orderId"), o.get("kind")) for o in objs[:-1]], [("SO-19990", "unknown_order")])
        self.assertEqual(objs[-1]["summary"]["matched"], 4)
        # Hostile rows: each a bad_row at its line, the rest still compared.
        hostile = self.write("hostile.csv", b"".join([
            HEADER.encode(),
            b"SO-20001;APP\0ROVED;x;y\n",                 # 2 NUL
            b"SO-20001;" + b"x" * (300 << 10) + b";x;y\n",  # 3 a 300 KiB record
            b";" * 5000 + b"\n",                           # 4 5000 columns
            b"SO-20001;APPROVED;x;y",                      # 5 good, no line ending
        ]), mode="wb")
        r = self.rec("-m", MAP, "--json", hostile, check=3)
        objs = [json.loads(x) for x in r.out.splitlines()]
        self.assertEqual([(o.get("line"), o.get("kind"), o.get("message", "")[:20]) for o in objs[:-1]],
                         [(2, "bad_row", "MALFORMED: column 2:"), (3, "bad_row", "TOO_LARGE: record lo"),
                          (4, "bad_row", "TOO_LARGE: more than")])
        self.assertEqual((objs[-1]["summary"]["rows"], objs[-1]["summary"]["matched"]), (4, 1))
        # A mapping error: MAPPING:LINE, exit 2, nothing compared.
        bad = self.write("bad.ini", open(MAP).read().replace("status.RELEASED = orderReleased",
                                                             "status.RELEASED = orderReleasd"))
        line = open(MAP).read().split("\n").index("status.RELEASED = orderReleased") + 1
        r = self.rec("-m", bad, snap, check=2)
        self.assertIn("%s:%d: status.RELEASED: \"orderReleasd\" is not an event type" % (bad, line), r.err)
        self.assertEqual(r.out, "")
        # A header without the id column: exit 2, naming the mapping's line and the file.
        nohdr = self.write("nohdr.csv", "order;status\nSO-1;RELEASED\n")
        r = self.rec("-m", MAP, nohdr, check=2)
        self.assertIn("column \"order_no\" is not in the header of %s" % nohdr, r.err)
        # An import mapping has no [reconcile]; no store: exit 1; no file: usage.
        r = self.rec("-m", os.path.join(EXAMPLES, "erp-open-orders.ini"), snap, check=2)
        self.assertIn("no [reconcile] section", r.err)
        self.t.run("reconcile", "--data", os.path.join(self.root, "nowhere"), "-m", MAP, snap, check=1)
        self.rec("-m", MAP, check=2)
        self.rec("-m", MAP, os.path.join(self.root, "missing.csv"), check=1)

    def api(self, serve, path, body=None):
        req = urllib.request.Request(serve.url + path, data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=fx.tmo(30)) as r:
            return r.status, json.loads(r.read())

    def mismatches(self, serve):
        st, page = self.api(serve, "/api/v1/views/mismatches?limit=1000")
        self.assertEqual(st, 200, page)
        return {(i["orderId"], i["check"]): i for i in page["items"]}

    def publish_run(self, snap, check, at_ns):
        os.utime(snap, ns=(at_ns, at_ns))  # the snapshot's time is the events' occurredAt
        r = self.rec("-m", MAP, "--publish", "--nats", self.nats.url, "--json", snap, check=check)
        objs = [json.loads(x) for x in r.out.splitlines()]
        fx.wait_caught_up(self.t, self.data, self.client, self.proj)
        return objs[:-1], objs[-1]["summary"]["published"], r

    def test_publish_mismatches_view_lifecycle(self):
        self.feed(TRACE)
        serve = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve.log"),
                              args=["--nats", self.nats.url]).start()
        self.addCleanup(serve.stop)
        t1, t2 = 1796177400 * 10**9, 1796263800 * 10**9  # 2026-12-02T02:10:00Z, a day later
        # A constructed disagreement (the ERP says RELEASED, the tower never saw orderReleased), an order the
        # tower never heard of, an agreeing row and a malformed one among them.
        snap = self.write("erp-status-1202.csv", HEADER + "SO-OK1;RELEASED;;\nSO-\"Q;RELEASED;;\nSO-MM;RELEASED;;\n"
                          "SO-NONE;RELEASED;;\n")
        found, pub, r = self.publish_run(snap, 3, t1)
        self.assertEqual([(o["line"], o.get("orderId"), o["kind"]) for o in found],
                         [(3, None, "bad_row"), (4, "SO-MM", "missing_milestone"), (5, "SO-NONE", "unknown_order")])
        self.assertEqual(pub, {"snapshot": "erp-status-1202.csv 2026-12-02T02:10:00Z", "found": 2, "cleared": 0,
                               "unchanged": 0, "stored": 2, "duplicates": 0, "failed": 0}, r.describe())
        items = self.mismatches(serve)
        self.assertEqual(sorted(items), [("SO-MM", "missing_milestone:orderReleased"), ("SO-NONE", "unknown_order")])
        mm = items[("SO-MM", "missing_milestone:orderReleased")]
        self.assertEqual((mm["system"], mm["theirs"], mm["ours"], mm["snapshot"], mm["since"], mm["state"]),
                         ("erp", "RELEASED", "stage APPROVED; orderReleased not seen",
                          "erp-status-1202.csv 2026-12-02T02:10:00Z", "2026-12-02T02:10:00Z", "open"))
        self.assertIn("the tower has not seen orderReleased", mm["message"])
        # Worked like every exception: an acknowledgement through the API.
        st, body = self.api(serve, "/api/v1/exceptions/%s/ack" % mm["exceptionId"], {"note": "asked the ERP team"})
        self.assertEqual((st, body["exception"]["state"]), (200, "acknowledged"), body)
        last = self.client.stream_info("TOWER_EVENTS")["state"]["last_seq"]
        # The same snapshot again: nothing new on the stream, the item unchanged.
        found, pub, r = self.publish_run(snap, 3, t1)
        self.assertEqual((pub["found"], pub["cleared"], pub["unchanged"], pub["stored"]), (0, 0, 2, 0), r.describe())
        self.assertEqual(self.client.stream_info("TOWER_EVENTS")["state"]["last_seq"], last)
        # A corrected snapshot: SO-MM agrees now and is cleared; SO-NONE is still unknown (its mismatch events
        # do not make the tower know the order), so it stays.
        fixed = self.write("erp-status-1203.csv", HEADER + "SO-MM;APPROVED;;\nSO-NONE;RELEASED;;\n")
        found, pub, r = self.publish_run(fixed, 3, t2)
        self.assertEqual((pub["found"], pub["cleared"], pub["unchanged"], pub["stored"]), (0, 1, 1, 1), r.describe())
        self.assertEqual(sorted(self.mismatches(serve)), [("SO-NONE", "unknown_order")])
        st, ex = self.api(serve, "/api/v1/exceptions/%s" % mm["exceptionId"])
        self.assertEqual((ex["state"], ex["closedBy"]["type"], ex["history"][0]["action"]),
                         ("closed", "mismatchCleared", "acknowledged"), ex)


if __name__ == "__main__":
    sys.exit(fx.main(sys.modules[__name__]))

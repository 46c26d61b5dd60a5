#!/usr/bin/env python3
"""A constructed trace for measuring predicted risk's cost (BENCHMARKS.md, "Predicted risk in the store and the
SLA engine"): DELIVERED orders over 5 days at 3 warehouses and 5 carriers (created, picking, packed, shipped,
delivered 2-20 h after shipping, POD and invoice captured: no SLA due stays open), then OPEN orders waiting in
PICKING on day 7 with promises 4-30 h after creation. Seeded: the same arguments give the same trace.

usage: risk_trace.py DELIVERED OPEN > trace.ndjson
"""
import datetime
import json
import random
import sys

H = 3600
T0 = int(datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc).timestamp())


def t(s):
    return datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ev(eid, at, system, **body):
    e = {"eventId": eid, "occurredAt": t(at), "source": {"system": system}}
    e.update(body)
    sys.stdout.write(json.dumps(e) + "\n")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    n_del, n_open = int(sys.argv[1]), int(sys.argv[2])
    random.seed(1)
    whs, cas = ["dc-1", "dc-2", "dc-3"], ["dhl", "ups", "dpd", "fedex", "postnl"]
    for k in range(n_del):
        o = "D%06d" % k
        s, wh, ca, c = o + "-S", random.choice(whs), random.choice(cas), T0 + random.randint(0, 5 * 24 * H)
        ev(o + "c", c, "erp", orderId=o, orderCreated={"warehouseId": wh, "promisedBy": t(c + 10 * H)})
        ev(o + "p", c + H, "wms", orderId=o, pickStarted={})
        ev(o + "k", c + 2 * H, "wms", orderId=o, shipmentId=s, packCompleted={})
        ev(o + "s", c + 3 * H, "wms", orderId=o, shipmentId=s, carrierId=ca, shipmentConfirmed={})
        d = c + 3 * H + random.randint(2 * H, 20 * H)
        ev(o + "d", d, "carrier", shipmentId=s, deliveryCompleted={})
        ev(o + "q", d + 60, "carrier", shipmentId=s, podCaptured={})
        ev(o + "i", c + 4 * H, "finance", orderId=o, invoicePosted={})
    for k in range(n_open):
        o, wh, c = "O%06d" % k, random.choice(whs), T0 + 6 * 24 * H + random.randint(0, 6 * H)
        ev(o + "c", c, "erp", orderId=o, orderCreated={"warehouseId": wh, "promisedBy": t(c + random.randint(4, 30) * H)})
        ev(o + "p", c + H, "wms", orderId=o, pickStarted={})
    return 0


if __name__ == "__main__":
    sys.exit(main())

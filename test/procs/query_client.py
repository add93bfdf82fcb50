"""Calls slarm_node's ~/query with the requests given as JSON and prints the responses as JSON.

usage: query_client.py NODE '[{"queries": [...], "threshold": 0.3, "clear": false}, ...]'
A request the client library itself cannot send is reported as {"client_error": "..."}.
"""
import json
import math
import sys

import rclpy
from slarm_msgs.srv import SetQueries

from finish import finish


def main():
    node_name, requests = sys.argv[1], json.loads(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("query_client")
    client = node.create_client(SetQueries, f"{node_name}/query")
    if not client.wait_for_service(timeout_sec=90):
        sys.exit("query service did not come up")
    results = []
    for req in requests:
        try:
            request = SetQueries.Request(queries=req.get("queries", []),
                                         threshold=float(req.get("threshold", math.nan)),
                                         clear=bool(req.get("clear", False)))
            future = client.call_async(request)
        except Exception as e:  # e.g. strings the serializer refuses
            results.append({"client_error": f"{type(e).__name__}: {e}"})
            continue
        rclpy.spin_until_future_complete(node, future, timeout_sec=30)
        if not future.done():
            results.append({"timeout": True})
            continue
        r = future.result()
        results.append({"success": r.success, "message": r.message,
                        "stats": [[s.query, s.matched_points, s.occupied_voxels] for s in r.stats]})
    print(json.dumps(results))
    finish(node)


if __name__ == "__main__":
    main()

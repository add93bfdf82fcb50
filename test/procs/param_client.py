"""Sets parameters of a node one request at a time, then reads them back; prints the results as JSON.

usage: param_client.py NODE '[{"voxel_size": 1.0}, {"window": 8}, ...]' NAME [NAME ...]
Each request is one SetParametersAtomically call (all or nothing); its result is {"successful": ..., "reason": ...}.
The names after the requests are read back with GetParameters: {"values": {name: value}}.
"""
import json
import sys

import rclpy
from rcl_interfaces.srv import GetParameters, SetParametersAtomically
from rclpy.parameter import Parameter, parameter_value_to_python

from finish import finish


def call(node, client, request):
    if not client.wait_for_service(timeout_sec=90):
        sys.exit(f"{client.srv_name} did not come up")
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=30)
    if not future.done():
        sys.exit(f"{client.srv_name} did not answer")
    return future.result()


def main():
    node_name, requests, names = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
    rclpy.init()
    node = rclpy.create_node("param_client")
    setter = node.create_client(SetParametersAtomically, f"{node_name}/set_parameters_atomically")
    getter = node.create_client(GetParameters, f"{node_name}/get_parameters")
    results = []
    for changes in requests:
        parameters = [Parameter(name, value=value).to_parameter_msg() for name, value in changes.items()]
        r = call(node, setter, SetParametersAtomically.Request(parameters=parameters)).result
        results.append({"successful": r.successful, "reason": r.reason})
    values = call(node, getter, GetParameters.Request(names=names)).values
    print(json.dumps({"results": results,
                      "values": {n: parameter_value_to_python(v) for n, v in zip(names, values)}}))
    finish(node)


if __name__ == "__main__":
    main()

"""Leave a test helper once its result is printed, even where DDS teardown stalls.

Fast DDS can, rarely, hang while a participant is destroyed or the interpreter finalises. A
helper's result is already on stdout by then, so teardown gets a bounded time and the process
leaves with ``os._exit`` either way; the test reads the result, not how the helper died.
"""
import os
import sys
import threading

import rclpy

TEARDOWN_S = 10.0


def finish(node, code: int = 0) -> None:
    def teardown():
        node.destroy_node()
        rclpy.try_shutdown()

    thread = threading.Thread(target=teardown, daemon=True)
    thread.start()
    thread.join(TEARDOWN_S)
    if thread.is_alive():
        print(f"rclpy teardown took over {TEARDOWN_S} s; leaving without it", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

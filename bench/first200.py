#!/usr/bin/python3
"""Milliseconds from an action to the first 200 of a function, for bench/run.sh.

  first200.py start PORT ID -- COMMAND...   exec COMMAND (a wasmlet start), then poll
  first200.py install PORT ID ADMIN_PORT ITEM_JSON
                                             POST the item to /wasm/install, then poll

Polls with a connect and a GET every half millisecond from this one process (a curl per try
would take the CPU the server needs to start). Prints the milliseconds; a started server keeps
running (its pid goes to stderr as "pid N") for the caller to stop.
"""
import http.client
import socket
import subprocess
import sys
import time


def first_200(port, function_id, give_up_s=30.0):
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/?name=book1", headers={"id": function_id})
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.0005)
    sys.exit(f"no 200 from id {function_id} on port {port} within {give_up_s} s")


def main():
    mode, port, function_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "start":
        command = sys.argv[sys.argv.index("--") + 1:]
        t0 = time.monotonic()
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first_200(port, function_id)
        print(f"{(time.monotonic() - t0) * 1000:.0f}")
        print(f"pid {server.pid}", file=sys.stderr)
    elif mode == "install":
        admin_port, item = int(sys.argv[4]), sys.argv[5]
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=120)
        conn.request("POST", "/wasm/install", body=item, headers={"content-type": "application/json"})
        answer = conn.getresponse()
        if answer.status != 200:
            sys.exit(f"install refused: {answer.status} {answer.read().decode(errors='replace')}")
        first_200(port, function_id)
        print(f"{(time.monotonic() - t0) * 1000:.0f}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

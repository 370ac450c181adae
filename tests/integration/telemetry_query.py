#!/usr/bin/env python3
"""Query a DPDK telemetry socket (v2 protocol) and print one JSON object.

usage: telemetry_query.py SOCKET CMD [CMD...]
Output: {"CMD": value, ...}, value being what the application answered for CMD.
Protocol: connect (SOCK_SEQPACKET), read the JSON greeting (it names max_output_len), then
for each command send it and read one JSON reply {"CMD": value}. Exit 1 on any error.
"""
import json
import socket
import sys


def main():
    path, cmds = sys.argv[1], sys.argv[2:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    hello = json.loads(s.recv(4096).decode())
    maxlen = int(hello.get("max_output_len", 16384))
    out = {}
    for c in cmds:
        s.send(c.encode())
        reply = json.loads(s.recv(maxlen).decode())
        out[c] = reply.get(c)
    s.close()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()

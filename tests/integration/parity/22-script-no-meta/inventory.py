#!/usr/bin/env python3
"""A dynamic inventory without _meta: Ansible asks --host for each host."""
import json
import sys

GROUPS = {
    "app": {"hosts": ["app-a", "app-b"]},
    "db": {"hosts": ["db-a"], "vars": {"ansible_user": "dbowner"}},
    "prod": {"children": ["app", "db"]},
}
HOSTS = {
    "app-a": {"ansible_host": "10.22.0.1", "ansible_user": "appa"},
    "app-b": {"ansible_host": "10.22.0.2", "ansible_port": 2222, "ansible_become": "yes"},
    "db-a": {"ansible_ssh_host": "10.22.1.1"},
}

if len(sys.argv) == 2 and sys.argv[1] == "--list":
    print(json.dumps(GROUPS))
elif len(sys.argv) == 3 and sys.argv[1] == "--host":
    print(json.dumps(HOSTS.get(sys.argv[2], {})))
else:
    sys.exit("usage: inventory.py --list | --host HOST")

#!/usr/bin/env python3
"""A dynamic inventory with _meta.hostvars: Ansible runs it once, --list."""
import json
import sys

INVENTORY = {
    "mids": {
        "hosts": ["mid-dyn-1", "mid-dyn-2", "mid-dyn-3"],
        "vars": {"ansible_user": "dynops", "ansible_become": True},
    },
    "emea": {"hosts": ["mid-dyn-2"], "children": ["bastions"]},
    "bastions": {"hosts": ["bastion-dyn"]},
    "_meta": {
        "hostvars": {
            "mid-dyn-1": {"ansible_host": "10.21.0.1", "ansible_port": 2201},
            "mid-dyn-2": {"ansible_host": "10.21.0.2",
                          "ansible_ssh_common_args": "-o ProxyJump=hop@10.21.9.9:2022"},
            "mid-dyn-3": {"ansible_ssh_host": "10.21.0.3", "ansible_become_user": "mid"},
            "bastion-dyn": {"ansible_host": "10.21.9.9"},
        }
    },
}

if len(sys.argv) == 2 and sys.argv[1] == "--list":
    print(json.dumps(INVENTORY))
elif len(sys.argv) == 3 and sys.argv[1] == "--host":
    sys.exit("--host must not be called when _meta is given")
else:
    sys.exit("usage: inventory.py --list | --host HOST")

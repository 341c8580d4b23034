#!/usr/bin/env python3
import json
import sys

if sys.argv[1:] == ["--list"]:
    print(json.dumps({
        "scripted": {"hosts": ["dy-1", "dy-2"], "vars": {"ansible_port": 2323}},
        "static": {"hosts": ["dy-2"]},
        "_meta": {"hostvars": {"dy-1": {"ansible_host": "10.23.1.1"},
                               "dy-2": {"ansible_host": "10.23.1.2"}}},
    }))
else:
    print("{}")

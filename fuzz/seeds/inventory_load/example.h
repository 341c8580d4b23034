h# An example fleet in Ansible's YAML inventory shape: midfleet reads an
# Ansible user's inventory as it is. See docs/inventory.md.
all:
  vars:
    ansible_user: ops                  # or `user:`
    ansible_become: yes                # steps run through `sudo -n`
    mid_home: /opt/servicenow/mid
  children:
    emea:
      vars:
        # Rotations are run from a bastion: every EMEA host is reached
        # through it (comma-separate several hops).
        jump: ops@bastion-emea.example.com
        mid_cluster: emea              # never restarted two at a time
      hosts:
        mid-emea-01: { ansible_host: 10.20.0.11, mid_name: emea01 }
        mid-emea-02: { ansible_host: 10.20.0.12, mid_name: emea02 }
        mid-emea-03: { ansible_host: 10.20.0.13, mid_name: emea03, ansible_port: 2222 }
    amer:
      vars:
        ansible_ssh_common_args: "-o ProxyJump=ops@bastion-amer.example.com"
        mid_service: systemd:mid
      hosts:
        mid-amer-[01:02]:
          mid_name: "amer{{ inventory_hostname[-2:] }}"
    lab:
      hosts:
        mid-lab-01:
          ansible_host: 192.0.2.10
          ansible_become: no
          ansible_user: mid
          ansible_ssh_private_key_file: ~/.ssh/mid_lab_ed25519
          mid_name: lab01
          mid_home: /opt/snc_mid_server      # the container layout

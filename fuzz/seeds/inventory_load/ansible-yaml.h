h# A fleet written the way Ansible users write it.
all:
  vars:
    ansible_user: ops
    ansible_become: yes
  children:
    europe:
      children:
        emea:
          vars:
            ansible_ssh_common_args: "-o ProxyJump=ops@bastion-emea.example.com"
            mid_cluster: emea
          hosts:
            mid-emea-01: { ansible_host: 10.20.0.11, mid_name: emea01 }
            mid-emea-02: { ansible_host: 10.20.0.12, mid_name: emea02, ansible_port: 2222 }
            mid-emea-03: { ansible_host: 10.20.0.13, mid_name: emea03, ansible_become: no, ansible_user: mid }
    amer:
      vars:
        ansible_ssh_private_key_file: ~/.ssh/mid_amer
        mid_service: systemd:mid
        mid_name: "amer{{ inventory_hostname[-2:] }}"
      hosts:
        mid-amer-[01:03]:
    lab:
      hosts:
        mid-lab-01: { ansible_host: 127.0.0.1, ansible_port: 2201, mid_home: /opt/snc_mid_server, mid_name: lab01 }

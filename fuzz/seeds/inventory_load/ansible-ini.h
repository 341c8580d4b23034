h# The same fleet as ansible-yaml/, in Ansible's INI shape with group_vars/.
[emea]
mid-emea-01 ansible_host=10.20.0.11 mid_name=emea01
mid-emea-02 ansible_host=10.20.0.12 mid_name=emea02 ansible_port=2222
mid-emea-03 ansible_host=10.20.0.13 mid_name=emea03 ansible_become=no ansible_user=mid

[europe:children]
emea

[amer]
mid-amer-[01:03]

[lab]
mid-lab-01 ansible_host=127.0.0.1 ansible_port=2201 mid_home=/opt/snc_mid_server mid_name=lab01

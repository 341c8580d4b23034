yansible_user: ops
ansible_become: yes

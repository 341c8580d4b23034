yansible_ssh_common_args: "-o ProxyJump=ops@bastion-emea.example.com"
mid_cluster: emea

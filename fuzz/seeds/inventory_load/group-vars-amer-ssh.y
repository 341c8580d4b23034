yansible_ssh_private_key_file: ~/.ssh/mid_amer

yall:
  hosts:
    mid-01: { ansible_port: 22
    mid-02:

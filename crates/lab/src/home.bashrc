# ~/.bashrc of the lab hosts' login user: as a distribution ships it.
# sshd's bash reads it for every command run over ssh (midfleet's and
# Ansible's), and a stock one returns at once when not interactive.
case $- in
    *i*) ;;
    *) return ;;
esac
PS1='\u@\h:\w\$ '

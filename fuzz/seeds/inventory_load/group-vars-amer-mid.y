ymid_service: systemd:mid
mid_name: "amer{{ inventory_hostname[-2:] }}"

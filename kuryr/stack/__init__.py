"""The local single-node stack: OVS (userspace datapath), OVN, PostgreSQL, Neutron, dockerd
and the Kuryr daemon, started by hand (no systemd) under one directory."""

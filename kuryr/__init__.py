"""Kuryr: Docker's libnetwork network and IPAM drivers, implemented with OpenStack Neutron."""

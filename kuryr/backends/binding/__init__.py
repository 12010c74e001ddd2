"""How a Neutron port reaches this host: one small interface, one module per backend."""

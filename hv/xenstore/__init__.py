"""xenstored: the store every domain and the toolstack share (Xen's
tools/xenstore, the C daemon's rules)."""

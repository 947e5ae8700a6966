"""Dense forensic maps; each public module registers its method(s)."""

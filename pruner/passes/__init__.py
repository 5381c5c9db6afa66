"""One pass: list, decide, delete, record. The lock, the state files and the audit trail it
keeps in state_dir, the executor that carries out a plan, and the hooks that watch it.
"""

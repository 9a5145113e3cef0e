"""Mounting a vault to a private RAM-backed directory: the session, its tracker and deadlines,
the sync planner, the mount directory and its wipe, the journal, scanning and recovery."""

"""The app's screens: they call the vault and the mount session, long work in workers."""

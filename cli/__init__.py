"""The application's front door: the `lmforge` command, the demo, the UI launcher, the demo site."""

"""Leapwork: the controller's REST API client and a faithful local emulator of it."""

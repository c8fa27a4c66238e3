"""Testsigma Cloud: the REST API v1 client and a faithful local emulator (api/testsigma.md)."""

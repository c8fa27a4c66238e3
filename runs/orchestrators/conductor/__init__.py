"""Conductor (conductor-oss and Orkes): the client and a faithful local emulator."""

"""Sending only what changes the picture: the change measure, the request budget, the credits."""

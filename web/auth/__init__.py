"""Accounts and tokens: register, login, refresh, logout, me."""

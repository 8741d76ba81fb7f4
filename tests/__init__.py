"""Tests of tap-udemy-business, run against the sandbox portal over real HTTP."""

"""Sandbox portal: a local simulation of the Udemy Business API for tests, demos and benchmarks.

``SandboxPortal`` serves a deterministic ``Dataset`` over HTTP on loopback, with faults on demand
(``FaultParams``); see ``docs/sandbox-design.md``.
"""

from tap_udemy_business.sandbox.faults import FaultParams
from tap_udemy_business.sandbox.model import DatasetParams
from tap_udemy_business.sandbox.server import RequestRecord, SandboxPortal

__all__ = ["DatasetParams", "FaultParams", "RequestRecord", "SandboxPortal"]

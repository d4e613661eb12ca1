"""A Klaviyo-compatible HTTP server for rehearsals and tests.

``serve_in_thread()`` starts one on loopback and yields its ``base_url`` and ``api_key``; point a
plan's ``providers.klaviyo.base_url`` at it. The sandbox imports nothing from the rest of
warmup but the generic ``warmup.serving`` starter: it stands in for Klaviyo, so it must not share
the connector's assumptions.
"""

from warmup.sandbox.app import SandboxApp, SandboxConfig
from warmup.sandbox.server import RunningSandbox, serve_forever, serve_in_thread

__all__ = ["RunningSandbox", "SandboxApp", "SandboxConfig", "serve_forever", "serve_in_thread"]

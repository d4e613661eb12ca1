"""``warmup serve``: one-click unsubscribes, provider event webhooks, and the consent flow that
carries unsubscribes and complaints to Klaviyo."""

from warmup.consent.flow import FlowReport, import_events_file, run_consent_flow
from warmup.consent.pull import pull_klaviyo_unsubscribes
from warmup.consent.server import RunningService, serve_forever, serve_in_thread
from warmup.events import Backlog, unsubscribe_backlog

__all__ = [
    "Backlog",
    "FlowReport",
    "RunningService",
    "import_events_file",
    "pull_klaviyo_unsubscribes",
    "run_consent_flow",
    "serve_forever",
    "serve_in_thread",
    "unsubscribe_backlog",
]

"""One pass through every operation the sandbox serves, with Klaviyo's official SDK building
each request and parsing each answer with its own models (shared by the SDK and the
response-schema tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from klaviyo_api import KlaviyoAPI  # type: ignore[import-untyped]
from openapi_client.exceptions import ApiException  # type: ignore[import-untyped]


def eventually(read: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """Jobs complete later (milliseconds in fast mode): poll like a client would."""
    for _ in range(100):
        answer = read()
        if done(answer):
            return answer
        time.sleep(0.02)
    raise AssertionError(f"never done: {answer!r}")


def profile(email: str, **attributes: Any) -> dict[str, Any]:
    return {"type": "profile", "attributes": {"email": email, **attributes}}


def drive_every_operation(sdk: KlaviyoAPI) -> None:
    """One pass through every shipped operation, each answer read through the SDK's models
    (the response-schema test replays it too)."""
    # Lists
    created = sdk.Lists.create_list({"data": {"type": "list", "attributes": {"name": "SDK"}}})
    list_id = created.data.id
    assert sdk.Lists.get_list(list_id).data.attributes.name == "SDK"
    assert list_id in [item.id for item in sdk.Lists.get_lists().data]

    # Profiles
    ann = sdk.Profiles.create_profile(
        {"data": profile("ann@example.com", first_name="Ann", properties={"tier": "gold"})}
    ).data
    upserted = sdk.Profiles.create_or_update_profile(
        {"data": profile("bob@example.com", phone_number="+15005550006")}
    ).data
    updated = sdk.Profiles.update_profile(
        ann.id, {"data": {"type": "profile", "id": ann.id, "attributes": {"last_name": "Lee"}}}
    ).data
    assert updated.attributes.last_name == "Lee"
    assert sdk.Profiles.get_profile(ann.id).data.attributes.first_name == "Ann"
    first = sdk.Profiles.get_profiles(page_size=1)
    # links.next as the cursor, the SDK's documented paging: it sends an http:// link whole.
    second = sdk.Profiles.get_profiles(page_size=1, page_cursor=first.links.next)
    assert {first.data[0].id, second.data[0].id} == {ann.id, upserted.id}
    by_email = sdk.Profiles.get_profiles(sort="-email").data
    assert [p.attributes.email for p in by_email] == ["bob@example.com", "ann@example.com"]

    # List membership
    members = {"data": [{"type": "profile", "id": ann.id}, {"type": "profile", "id": upserted.id}]}
    sdk.Lists.add_profiles_to_list(list_id, members)
    assert len(sdk.Lists.get_profiles_for_list(list_id).data) == 2
    sdk.Lists.remove_profiles_from_list(list_id, {"data": [{"type": "profile", "id": ann.id}]})
    assert [p.id for p in sdk.Lists.get_profile_ids_for_list(list_id).data] == [upserted.id]

    # Bulk import, its errors and the profiles it touched
    job = sdk.Profiles.bulk_import_profiles(
        {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {
                        "data": [
                            profile("cat@example.com"),
                            profile("dan@example.com", phone_number="12345"),
                        ]
                    }
                },
                "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
            }
        }
    ).data
    done = eventually(
        lambda: sdk.Profiles.get_bulk_import_profiles_job(job.id).data,
        lambda d: d.attributes.status == "complete",
    )
    assert (done.attributes.completed_count, done.attributes.failed_count) == (1, 1)
    [failure] = sdk.Profiles.get_errors_for_bulk_import_profiles_job(job.id).data
    assert failure.attributes.source.pointer.endswith("phone_number")
    touched = sdk.Profiles.get_profiles_for_bulk_import_profiles_job(job.id).data
    assert [p.attributes.email for p in touched] == ["cat@example.com"]
    ids = sdk.Profiles.get_profile_ids_for_bulk_import_profiles_job(job.id).data
    assert [p.id for p in ids] == [touched[0].id]
    newest_first = sdk.Lists.get_profiles_for_list(list_id, sort="-joined_group_at").data
    assert [p.id for p in newest_first] == [touched[0].id, upserted.id]
    with_lists = sdk.Profiles.get_profile(upserted.id, include=["lists", "segments"])
    assert [item.id for item in with_lists.data.relationships.lists.data] == [list_id]
    assert with_lists.data.relationships.segments.data == []
    assert [item["id"] for item in with_lists.included] == [list_id]  # the SDK keeps dicts
    tagged = sdk.Lists.get_list(list_id, include=["tags"])
    assert (tagged.data.relationships.tags.data, tagged.included) == ([], [])
    [listed] = sdk.Lists.get_lists(include=["flow-triggers"], sort="-created").data
    assert listed.relationships.flow_triggers.data == []

    # Consent: subscribe, unsubscribe, suppress and unsuppress
    consented = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    subscription = {"email": {"marketing": {"consent": "SUBSCRIBED", "consented_at": consented}}}
    sdk.Profiles.bulk_subscribe_profiles(
        {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {
                    "historical_import": True,
                    "profiles": {"data": [profile("eve@example.com", subscriptions=subscription)]},
                },
                "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
            }
        }
    )
    unsubscription = {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}
    sdk.Profiles.bulk_unsubscribe_profiles(
        {
            "data": {
                "type": "profile-subscription-bulk-delete-job",
                "attributes": {
                    "profiles": {"data": [profile("bob@example.com", subscriptions=unsubscription)]}
                },
            }
        }
    )
    suppression = sdk.Profiles.bulk_suppress_profiles(
        {
            "data": {
                "type": "profile-suppression-bulk-create-job",
                "attributes": {"profiles": {"data": [profile("ann@example.com")]}},
            }
        }
    ).data
    eventually(
        lambda: sdk.Profiles.get_bulk_suppress_profiles_job(suppression.id).data,
        lambda d: d.attributes.status == "complete",
    )
    sdk.Profiles.bulk_unsuppress_profiles(
        {
            "data": {
                "type": "profile-suppression-bulk-delete-job",
                "attributes": {"profiles": {"data": [profile("ann@example.com")]}},
            }
        }
    )
    ann_now = eventually(
        lambda: sdk.Profiles.get_profile(ann.id, additional_fields_profile=["subscriptions"]),
        lambda d: not d.data.attributes.subscriptions.email.marketing.suppression,
    )
    assert ann_now.data.attributes.subscriptions.email.marketing.consent == "NEVER_SUBSCRIBED"

    # Events, metrics and their aggregates
    sent_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    metric = {"data": {"type": "metric", "attributes": {"name": "Received Email"}}}
    sdk.Events.create_event(
        {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {"Campaign Name": "day-1"},
                    "metric": metric,
                    "profile": {"data": profile("ann@example.com")},
                    "time": sent_at.isoformat(),
                    "unique_id": "ann-day-1",
                },
            }
        }
    )
    sdk.Events.bulk_create_events(
        {
            "data": {
                "type": "event-bulk-create-job",
                "attributes": {
                    "events-bulk-create": {
                        "data": [
                            {
                                "type": "event-bulk-create",
                                "attributes": {
                                    "profile": {"data": profile("bob@example.com")},
                                    "events": {
                                        "data": [
                                            {
                                                "type": "event",
                                                "attributes": {
                                                    "properties": {"Campaign Name": "day-1"},
                                                    "metric": metric,
                                                    "time": sent_at.isoformat(),
                                                },
                                            }
                                        ]
                                    },
                                },
                            }
                        ]
                    }
                },
            }
        }
    )
    events = eventually(sdk.Events.get_events, lambda d: len(d.data) == 2).data
    metric_id = events[0].relationships.metric.data.id
    assert sdk.Events.get_event(events[0].id).data.attributes.event_properties["$event_id"]
    assert [m.id for m in sdk.Metrics.get_metrics().data] == [metric_id]
    assert sdk.Metrics.get_metric(metric_id).data.attributes.name == "Received Email"
    triggers = sdk.Metrics.get_metric(metric_id, include=["flow-triggers"])
    assert (triggers.data.relationships.flow_triggers.data, triggers.included) == ([], [])
    day = sent_at.date()
    aggregate = sdk.Metrics.query_metric_aggregates(
        {
            "data": {
                "type": "metric-aggregate",
                "attributes": {
                    "metric_id": metric_id,
                    "measurements": ["count", "unique"],
                    "interval": "day",
                    "filter": [
                        f"greater-or-equal(datetime,{day.isoformat()}T00:00:00)",
                        f"less-than(datetime,{(day + timedelta(days=1)).isoformat()}T00:00:00)",
                        'equals(Campaign Name,"day-1")',
                    ],
                    "timezone": "UTC",
                },
            }
        }
    ).data
    [row] = aggregate.attributes.data
    assert row.measurements == {"count": [2.0], "unique": [2.0]}

    # Deleting the list; then a refused call through the SDK carries Klaviyo's error body
    sdk.Lists.delete_list(list_id)
    with pytest.raises(ApiException) as refused:
        sdk.Lists.get_list(list_id)
    assert refused.value.status == 404

"""`warmup check PLAN`: a pre-flight before the first real day, one verdict per check.

Each check touches the real thing and changes nothing: Klaviyo is asked for its lists and
profiles (read scopes) and sent deliberately empty write requests, which Klaviyo answers 400
when the key has the write scopes and 403 when it lacks them, before it looks at the body;
the SMTP relay gets EHLO, STARTTLS and AUTH as the plan configures them, then QUIT; the store
opens a write transaction and rolls it back. Secrets are read from the environment variables
the plan names and never shown.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmup.errors import KlaviyoError, StoreError, WarmupError
from warmup.plan import LoadedPlan
from warmup.plan.models import (
    ConsentListRef,
    FileProvider,
    ListRef,
    SendGridProvider,
    SesProvider,
    SmtpProvider,
)
from warmup.store import customers as stored_customers
from warmup.store.backends import is_postgres_url, store_location


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<30} {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _env_checks(loaded: LoadedPlan) -> list[Check]:
    plan = loaded.plan
    new = plan.providers.new
    checks: list[Check] = []

    def need(name: str, what: str) -> None:
        present = bool(loaded.setting(name))
        checks.append(
            Check(
                f"env {name}",
                present,
                f"set ({what})" if present else f"not set — export {name}=… ({what})",
            )
        )

    need(plan.providers.klaviyo.api_key_env, "the Klaviyo private API key")
    if isinstance(new, SmtpProvider):
        need(plan.unsubscribe.secret_env, "signs unsubscribe links; `warmup serve` needs it too")
        for name in (new.username_env, new.password_env):
            if name:
                need(name, "SMTP AUTH")
    elif isinstance(new, SesProvider | SendGridProvider):
        need(plan.unsubscribe.secret_env, "signs unsubscribe links; `warmup serve` needs it too")
        if isinstance(new, SesProvider) and new.credentials == "env":
            for name in (new.access_key_id_env, new.secret_access_key_env, new.session_token_env):
                if name:
                    need(name, "AWS credentials for SES")
        if isinstance(new, SendGridProvider):
            need(new.api_key_env, "the SendGrid API key, mail.send scope")
            need(
                plan.events.sendgrid.public_key_env,
                "verifies SendGrid's signed Event Webhook; without it `warmup serve` refuses "
                "SendGrid's events and the guardrails see no bounces",
            )
    else:
        secret = plan.unsubscribe.secret_env
        checks.append(
            Check(
                f"env {secret}",
                True,
                "set"
                if loaded.setting(secret)
                else "not set: a rehearsal with the file "
                "provider signs links with this store's own random secret",
            )
        )
    hook = plan.events.webhook_secret_env
    if isinstance(new, SesProvider | SendGridProvider):
        # SES's events come signed by SNS and SendGrid's by its own key: this HMAC secret only
        # guards the generic /webhooks/events endpoint, which their events never use
        ses = isinstance(new, SesProvider)
        route = "/webhooks/ses (through SNS)" if ses else "/webhooks/sendgrid"
        unset = f"not set: not needed, {new.kind} events arrive at {route}"
        checks.append(Check(f"env {hook}", True, "set" if loaded.setting(hook) else unset))
        return checks
    checks.append(
        Check(
            f"env {hook}",
            True,
            "set (provider webhooks are verified)"
            if loaded.setting(hook)
            else "not set: `warmup serve` answers provider webhooks 503 (fine when the "
            "provider sends none)",
        )
    )
    return checks


def _probe_write(client: Any, path: str) -> str | None:
    """None when the key may write there (Klaviyo refuses the empty body with a 400), else
    what Klaviyo said."""
    try:
        client.call("POST", path, json={"data": {}})
    except KlaviyoError as exc:
        if exc.status == 400:
            return None
        return exc.message
    return None


def _klaviyo_checks(loaded: LoadedPlan) -> list[Check]:
    from warmup.dispatch.klaviyo import client_for
    from warmup.providers.klaviyo.lists import find_list

    k = loaded.plan.providers.klaviyo
    if not loaded.setting(k.api_key_env):
        return [Check("klaviyo", False, f"not tried: {k.api_key_env} is not set")]
    checks: list[Check] = []
    try:
        client = client_for(loaded)
    except WarmupError as exc:
        return [Check("klaviyo", False, exc.render())]
    try:
        try:
            client.get("/api/lists")
            client.get("/api/profiles")
        except WarmupError as exc:
            return [Check("klaviyo", False, f"{k.base_url}: {exc.render()}")]
        checks.append(
            Check("klaviyo", True, f"{k.base_url} answers; the key reads lists and profiles")
        )
        needed = [("/api/profile-bulk-import-jobs", "lists:write profiles:write")]
        if k.list_mode == "subscribe" or k.unsubscribe_via_api:
            needed.append(("/api/profile-subscription-bulk-create-jobs", "subscriptions:write"))
        missing = [
            f"{scopes} ({problem})"
            for path, scopes in needed
            if (problem := _probe_write(client, path)) is not None
        ]
        scopes = ", ".join(s for _, s in needed)
        checks.append(
            Check(
                "klaviyo scopes",
                not missing,
                f"the key may write ({scopes})"
                if not missing
                else "missing: " + "; ".join(missing) + " — give the key these scopes",
            )
        )
        for which, ref in (("exclusion", k.exclusion_list), ("unsubscribe", k.unsubscribe_list)):
            checks.append(_list_check(client, which, ref, find_list, loaded.store_path))
        for category, consent_ref in k.consent_lists.items():
            checks.append(_consent_list_check(client, category, consent_ref, find_list))
    finally:
        client.close()
    return checks


def _claimed_elsewhere(list_ids: list[str], store_path: Path) -> str | None:
    """The first list another plan's store has claimed, said as `warmup run` would refuse it."""
    from warmup.app.day import claimed_elsewhere

    for list_id in list_ids:
        if held := claimed_elsewhere(list_id, store_path):
            return (
                f"{list_id} is claimed by plan {held['plan']!r} (store {held['store']}): "
                "`warmup run` would refuse it — give this plan its own list, or pass --claim "
                "to take it over knowingly"
            )
    return None


def _consent_list_check(
    client: Any, category: str, ref: ConsentListRef, find_list: Callable[[Any, str], str | None]
) -> Check:
    """A consent category's list must exist: it is read before each day, never created."""
    name = f"consent list {category}"
    fix = f"fix providers.klaviyo.consent_lists.{category} in the plan"
    try:
        if ref.name is not None:
            found = find_list(client, ref.name)
            if found is None:
                return Check(name, False, f"Klaviyo has no list named {ref.name!r} — {fix}")
            return Check(name, True, f"{ref.name!r} is {found}, read before each day")
        client.get(f"/api/lists/{ref.id}")
        return Check(name, True, f"{ref.id} found in Klaviyo, read before each day")
    except KlaviyoError as exc:
        if exc.status == 404:
            return Check(name, False, f"{exc.message} — {fix}")
        return Check(name, False, exc.render())
    except WarmupError as exc:
        return Check(name, False, exc.render())


def _list_check(
    client: Any,
    which: str,
    ref: ListRef,
    find_list: Callable[[Any, str], str | None],
    store_path: Path,
) -> Check:
    name = f"{which} list"
    try:
        if ref.name is not None:
            if "{" in ref.name:
                return Check(name, True, f"one list per day named {ref.name!r}, found or made")
            found = find_list(client, ref.name)
            if found and (elsewhere := _claimed_elsewhere([found], store_path)):
                return Check(name, False, f"{ref.name!r} is {elsewhere}")
            return Check(
                name,
                True,
                f"{ref.name!r} is {found}, not claimed by another plan"
                if found
                else f"{ref.name!r} does not exist yet: day 1 creates it",
            )
        ids = [ref.id] if ref.id else sorted(set((ref.per_day or {}).values()))
        for list_id in ids:
            client.get(f"/api/lists/{list_id}")
        if elsewhere := _claimed_elsewhere([str(i) for i in ids], store_path):
            return Check(name, False, elsewhere)
        return Check(name, True, f"{', '.join(str(i) for i in ids)} found in Klaviyo")
    except KlaviyoError as exc:
        if exc.status == 404:
            return Check(
                name,
                False,
                f"{exc.message} — fix providers.klaviyo.{which}_list in the plan",
            )
        return Check(name, False, exc.render())
    except WarmupError as exc:
        return Check(name, False, exc.render())


def _provider_check(loaded: LoadedPlan) -> Check:
    new = loaded.plan.providers.new
    if isinstance(new, FileProvider):
        directory = Path(new.directory)
        if not directory.is_absolute():
            directory = loaded.path.parent / directory
        probe = directory if directory.exists() else directory.parent
        ok = probe.is_dir() and os.access(probe, os.W_OK)
        return Check(
            "new provider",
            ok,
            f"file: .eml files go to {directory}"
            if ok
            else f"file: {directory} cannot be written — point directory: at a writable folder",
        )
    if isinstance(new, SesProvider):
        return _ses_check(loaded, new)
    if isinstance(new, SendGridProvider):
        return _sendgrid_check(loaded, new)
    from warmup.dispatch.email import provider_for
    from warmup.providers.smtp import SmtpProvider as Smtp

    assert isinstance(new, SmtpProvider)
    where = f"{new.host}:{new.port}"
    try:
        provider = provider_for(loaded)
        assert isinstance(provider, Smtp)
        said = provider.probe()
    except WarmupError as exc:
        return Check("smtp", False, _provider_detail(exc))
    return Check("smtp", True, f"{where}: {said}")


# What a sending run's provider errors add about the rows it leaves (see providers/): a check
# writes no row and sends nothing, so it is left out of the check's line.
_SENDING_ONLY = re.compile(r";\s*rows stay pending(, run again to resume)?$")


def _provider_detail(exc: WarmupError) -> str:
    hint = _SENDING_ONLY.sub("", exc.hint or "")
    return f"{exc.message} — {hint}" if hint else exc.message


def _ses_check(loaded: LoadedPlan, new: SesProvider) -> Check:
    """GetAccount, signed with the plan's credentials: it changes nothing."""
    from warmup.dispatch.email import provider_for
    from warmup.providers.ses import SesProvider as Ses

    try:
        provider = provider_for(loaded)
        assert isinstance(provider, Ses)
        rate = provider.rate_per_second
    except WarmupError as exc:
        return Check("ses", False, _provider_detail(exc))
    account = provider.account
    production = account.get("ProductionAccessEnabled")
    where = (
        "production access" if production is not False else "SES sandbox: verified recipients only"
    )
    return Check(
        "ses",
        True,
        f"{new.region}: sending enabled, {rate:g} messages/s ({where}); "
        f"configuration set {new.configuration_set or 'none'} not checked",
    )


def _sendgrid_check(loaded: LoadedPlan, new: SendGridProvider) -> Check:
    """An empty Mail Send: SendGrid checks the key (401/403) before the body (400), so a 400
    means the key may send and nothing was sent."""
    import httpx

    key = loaded.setting(new.api_key_env)
    if not key:
        return Check("sendgrid", False, f"{new.api_key_env} is not set — export it")
    try:
        reply = httpx.post(
            f"{new.base_url}/v3/mail/send",
            json={},
            headers={"Authorization": f"Bearer {key}"},
            timeout=new.timeout_seconds,
        )
    except httpx.HTTPError as exc:
        return Check("sendgrid", False, f"cannot reach {new.base_url}: {exc}")
    if reply.status_code == 400:
        return Check("sendgrid", True, f"{new.base_url}: the key is accepted for Mail Send")
    if reply.status_code in (401, 403):
        return Check(
            "sendgrid",
            False,
            f"{new.base_url} answered {reply.status_code}: the key in {new.api_key_env} is "
            "refused or lacks the mail.send scope — make a key with Mail Send access",
        )
    return Check(
        "sendgrid", False, f"{new.base_url} answered {reply.status_code} to an empty Mail Send"
    )


def _settings_check(loaded: LoadedPlan) -> list[Check]:
    plan = loaded.plan
    sender = Check("sender", True, f"From {plan.sender.from_}")
    url = plan.unsubscribe.url
    link = Check(
        "unsubscribe",
        True,
        f"{url} (https; `warmup serve` answers its path"
        + (f"; mailto {plan.unsubscribe.mailto})" if plan.unsubscribe.mailto else ")"),
    )
    return [sender, link]


def _store_check(loaded: LoadedPlan) -> Check:
    path = loaded.store_path
    location = store_location(path)
    if is_postgres_url(location):
        try:
            customers = stored_customers.count_if_writable_at(location)
        except StoreError as exc:
            return Check("store", False, f"{exc.message} — {exc.hint}" if exc.hint else exc.message)
        return Check("store", True, f"{location} is writable ({customers:,} customers)")
    if not path.exists():
        return Check(
            "store",
            False,
            f"{path} does not exist — import the customers first: "
            f"warmup import {loaded.path} <your Klaviyo export>.csv",
        )
    try:
        customers = stored_customers.count_if_writable(path)
    except sqlite3.Error as exc:
        return Check("store", False, f"{path}: {exc}")
    return Check("store", True, f"{path} is writable ({customers:,} customers)")


def preflight(loaded: LoadedPlan) -> list[Check]:
    """Every check, in the order a person would fix them."""
    return [
        *_env_checks(loaded),
        *_klaviyo_checks(loaded),
        _provider_check(loaded),
        *_settings_check(loaded),
        _store_check(loaded),
    ]

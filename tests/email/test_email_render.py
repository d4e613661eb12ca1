from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment

from tests.email.email_fixtures import REPO, SECRET, write_plan
from warmup.email.render import EmailTemplates, check_email_templates, render_message
from warmup.email.tokens import verify_token
from warmup.errors import TemplateError
from warmup.plan import load_plan
from warmup.plan.render import compiled_templates


def custom_templates(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(REPO / "templates", folder)
    (folder / "email" / f"{name}.j2").write_text(body, encoding="utf-8")
    return folder


CUSTOMER = {
    "id": 7,
    "email": "jana@example.com",
    "first_name": "<script>alert(1)</script>",
    "last_name": "Novák",
    "attributes": '{"tier": "gold"}',
}


def test_html_is_escaped_and_text_is_not(tmp_path: Path) -> None:
    loaded = write_plan(tmp_path)
    message = render_message(loaded, "day-01", CUSTOMER, 1)
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "<script>alert(1)</script>" in message.text


def test_the_unsubscribe_url_carries_a_verifiable_token(tmp_path: Path) -> None:
    loaded = write_plan(tmp_path)
    message = render_message(loaded, "day-02", CUSTOMER, 2)
    token = message.text.split("token=")[1].split()[0]
    assert "jana" not in token
    assert verify_token(SECRET, "test-plan", token, {7: "jana@example.com"}.get) == (
        "jana@example.com"
    )


def test_subject_line_breaks_cannot_inject_headers(tmp_path: Path) -> None:
    templates = custom_templates(
        tmp_path,
        "day-01",
        (
            "{% block subject %}Hi {{ customer.first_name }}{% endblock %}"
            "{% block text %}t{% endblock %}{% block html %}h{% endblock %}"
        ),
    )
    loaded = write_plan(tmp_path, templates=templates)
    customer = CUSTOMER | {"first_name": "Jana\r\nBcc: all@example.com"}
    subject = render_message(loaded, "day-01", customer, 1).subject
    assert "\n" not in subject and "\r" not in subject
    assert subject == "Hi Jana Bcc: all@example.com"


def test_templates_see_plan_day_and_attributes(tmp_path: Path) -> None:
    templates = custom_templates(
        tmp_path,
        "day-01",
        (
            "{% block subject %}{{ plan.name }} {{ day }}/{{ day_count }}{% endblock %}"
            "{% block text %}{{ customer.attributes.tier }}{% endblock %}"
            "{% block html %}{{ customer.email }}{% endblock %}"
        ),
    )
    loaded = write_plan(tmp_path, templates=templates)
    message = render_message(loaded, "day-01", CUSTOMER, 1)
    assert (message.subject, message.text, message.html) == (
        "test-plan 1/3",
        "gold\n",
        "jana@example.com\n",
    )


def test_an_unknown_field_is_reported_with_file_and_line(tmp_path: Path) -> None:
    templates = custom_templates(
        tmp_path,
        "day-02",
        (
            "{% block subject %}Hello{% endblock %}\n"
            "{% block text %}Hi\n{{ customer.favourite_colour }}{% endblock %}\n"
            "{% block html %}<p>Hi</p>{% endblock %}\n"
        ),
    )
    loaded = write_plan(tmp_path, templates=templates)
    issues = check_email_templates(loaded)
    assert len(issues) == 1
    assert issues[0].file == str(templates / "email" / "day-02.j2")
    assert issues[0].line == 3
    assert "favourite_colour" in issues[0].message
    with pytest.raises(TemplateError) as raised:
        render_message(loaded, "day-02", CUSTOMER, 2)
    assert raised.value.render().startswith(f"{templates / 'email' / 'day-02.j2'}:3:")


def test_a_field_missing_for_some_customers_is_caught(tmp_path: Path) -> None:
    templates = custom_templates(
        tmp_path,
        "day-03",
        (
            "{% block subject %}{{ customer.first_name.upper() }}{% endblock %}"
            "{% block text %}t{% endblock %}{% block html %}h{% endblock %}"
        ),
    )
    loaded = write_plan(tmp_path, templates=templates)
    issues = check_email_templates(loaded)
    assert [Path(i.file).name for i in issues] == ["day-03.j2"]


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    templates = custom_templates(
        tmp_path,
        "day-01",
        (
            "{% block subject %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endblock %}"
            "{% block text %}t{% endblock %}{% block html %}h{% endblock %}"
        ),
    )
    loaded = write_plan(tmp_path, templates=templates)
    issues = check_email_templates(loaded)
    assert len(issues) == 1 and Path(issues[0].file).name == "day-01.j2"


def test_a_template_without_an_html_block_is_reported(tmp_path: Path) -> None:
    templates = custom_templates(
        tmp_path, "day-01", ("{% block subject %}s{% endblock %}{% block text %}t{% endblock %}")
    )
    issues = check_email_templates(write_plan(tmp_path, templates=templates))
    assert len(issues) == 1 and "html" in issues[0].message


@pytest.mark.parametrize("plan", ["example.yaml", "example-variant-2.yaml"])
def test_shipped_plans_templates_render_for_every_day(plan: str) -> None:
    loaded = load_plan(REPO / "plans" / plan)
    assert check_email_templates(loaded) == []
    subjects = {
        render_message(
            loaded, loaded.plan.schedule.template_for(d.day) or "", CUSTOMER, d.day
        ).subject
        for d in loaded.plan.schedule.days
    }
    assert len(subjects) >= 3


def test_a_compiled_template_is_reused_by_the_next_process_and_an_edit_recompiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tmp_path makes the template's path, so its cache entry, new to this test
    body = (
        "{% block subject %}Hi {{ customer.first_name }}{% endblock %}"
        "{% block text %}{{ customer.first_name }} v1{% endblock %}"
        "{% block html %}<p>{{ customer.first_name }} v1</p>{% endblock %}"
    )
    templates = custom_templates(tmp_path, "day-01", body)
    compiled: list[str] = []
    compile_source = SandboxedEnvironment.compile

    def counting_compile(self: SandboxedEnvironment, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(args[0])[:20])
        return compile_source(self, *args, **kwargs)

    monkeypatch.setattr(SandboxedEnvironment, "compile", counting_compile)
    context = {"customer": {"first_name": "<b>Jana</b>"}}
    first = EmailTemplates(templates).render("day-01", context)
    assert len(compiled) == 2  # without and with HTML escaping

    again = EmailTemplates(templates).render("day-01", context)  # new environments, as a new run
    assert len(compiled) == 2
    assert again == first
    assert again.text == "<b>Jana</b> v1\n"
    assert again.html == "<p>&lt;b&gt;Jana&lt;/b&gt; v1</p>\n"

    (templates / "email" / "day-01.j2").write_text(body.replace("v1", "v2"), encoding="utf-8")
    edited = EmailTemplates(templates).render("day-01", context)
    assert len(compiled) == 4
    assert edited.text == "<b>Jana</b> v2\n"


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_compiled_templates_are_not_kept_in_a_folder_others_may_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    # Jinja loads a cached entry as Python code, outside the sandbox: a folder another user may
    # write (WARMUP_TEMPLATE_CACHE=/tmp/shared) would let them plant code warmup then runs.
    # Jinja's own default folder is refused in that case; a named one must be too.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    monkeypatch.setenv("WARMUP_TEMPLATE_CACHE", str(shared))
    compiled_templates.cache_clear()
    try:
        body = "{% block subject %}Hi{% endblock %}{% block text %}t{% endblock %}"
        templates = custom_templates(tmp_path, "day-01", body + "{% block html %}h{% endblock %}")
        assert EmailTemplates(templates).render("day-01", {"customer": {}}).subject == "Hi"
        assert list(shared.iterdir()) == []
        shared.chmod(0o700)  # the same folder, private: used
        compiled_templates.cache_clear()
        EmailTemplates(templates).render("day-01", {"customer": {}})
        assert list(shared.iterdir()) != []
    finally:
        compiled_templates.cache_clear()

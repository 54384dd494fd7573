"""`platformctl diff`: created, deleted, replaced or updated by URN or alias, property by property, secrets masked."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from typer.testing import CliRunner

from platformctl.cli import cli
from platformctl.diff import diff_plans, render_markdown, replace_table
from platformctl.plan import SECRET_MASK, Plan, run_program

runner = CliRunner()
PREFIX = "urn:pulumi:prod::platform::"


def resource(type_token: str, name: str, parent: str | None = None, **inputs: Any) -> dict[str, Any]:
    qualified = f"{parent.rsplit('::', 2)[1].rsplit('$', 1)[-1]}${type_token}" if parent else type_token
    return {
        "urn": f"{PREFIX}{qualified}::{name}",
        "type": type_token,
        "name": name,
        "parent": parent,
        "custom": True,
        "inputs": inputs,
        "aliases": [],
        "replaceOnChanges": [],
    }


def plan_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"stack": "prod", "project": "platform", "resources": list(resources), "outputs": {}}


QUEUE = "aws:sqs/queue:Queue"
SUBNET = "aws:ec2/subnet:Subnet"


def test_an_updatable_change_is_an_update_listing_each_changed_property() -> None:
    base = plan_of(resource(QUEUE, "orders", visibilityTimeoutSeconds=120, tags={"a": "1", "b": "2"}))
    head = plan_of(resource(QUEUE, "orders", visibilityTimeoutSeconds=300, tags={"a": "1", "c": "3"}))
    diff = diff_plans(base, head)
    [change] = diff.changes
    assert change.action == "update"
    assert [(p.path, p.before, p.after) for p in change.properties] == [
        ("tags.b", "2", None),
        ("tags.c", None, "3"),
        ("visibilityTimeoutSeconds", 120, 300),
    ]
    assert not diff.destructive


def test_a_force_new_property_makes_it_a_replacement() -> None:
    base = plan_of(resource(SUBNET, "private-a", cidrBlock="10.0.0.0/20", tags={"n": "1"}))
    head = plan_of(resource(SUBNET, "private-a", cidrBlock="10.0.16.0/20", tags={"n": "2"}))
    [change] = diff_plans(base, head).changes
    assert change.action == "replace"
    assert {p.path: p.forces_replacement for p in change.properties} == {"cidrBlock": True, "tags.n": False}


def test_the_programs_replace_on_changes_option_counts() -> None:
    before = resource(QUEUE, "orders", delaySeconds=0)
    after = copy.deepcopy(before) | {"inputs": {"delaySeconds": 5}, "replaceOnChanges": ["delaySeconds"]}
    assert diff_plans(plan_of(before), plan_of(after)).changes[0].action == "replace"


def test_created_and_deleted_resources_and_unchanged_ones_omitted() -> None:
    kept = resource(QUEUE, "kept", delaySeconds=0)
    diff = diff_plans(plan_of(kept, resource(QUEUE, "old")), plan_of(kept, resource(QUEUE, "new")))
    assert [(c.action, c.urn.rsplit("::", 1)[-1]) for c in diff.changes] == [("create", "new"), ("delete", "old")]
    assert diff.destructive


def test_a_resource_renamed_with_an_alias_is_matched_not_replaced() -> None:
    old = resource(QUEUE, "orders-old", delaySeconds=0)
    new = resource(QUEUE, "orders", delaySeconds=0) | {"aliases": [old["urn"]]}
    [change] = diff_plans(plan_of(old), plan_of(new)).changes
    assert (change.action, change.previous_urn, change.properties) == ("update", old["urn"], ())


def test_children_follow_an_aliased_parent_whose_type_changed() -> None:
    old_parent = resource("platform:old:Messaging", "messaging") | {"custom": False}
    new_parent = resource("platform:messaging:Messaging", "messaging") | {
        "custom": False,
        "aliases": [old_parent["urn"]],
    }
    old_child = resource(QUEUE, "orders", parent=old_parent["urn"], delaySeconds=0)
    new_child = resource(QUEUE, "orders", parent=new_parent["urn"], delaySeconds=0)
    diff = diff_plans(plan_of(old_parent, old_child), plan_of(new_parent, new_child))
    assert [(c.action, c.previous_urn) for c in diff.changes] == [("update", old_child["urn"])]


def test_secrets_stay_masked_on_both_sides() -> None:
    base = plan_of(resource("aws:secretsmanager/secretVersion:SecretVersion", "v", secretString="plain-before"))
    head = plan_of(resource("aws:secretsmanager/secretVersion:SecretVersion", "v", secretString=SECRET_MASK))
    [change] = diff_plans(base, head).changes
    assert [(p.before, p.after) for p in change.properties] == [(SECRET_MASK, SECRET_MASK)]
    assert "plain-before" not in render_markdown(diff_plans(base, head))


def test_json_text_inputs_are_compared_by_content() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage"}]}
    base = plan_of(resource("aws:sqs/queuePolicy:QueuePolicy", "p", policy=json.dumps(policy)))
    respaced = plan_of(resource("aws:sqs/queuePolicy:QueuePolicy", "p", policy=json.dumps(policy, indent=4)))
    assert diff_plans(base, respaced).changes == []
    policy["Statement"][0]["Action"] = "sqs:*"
    changed = plan_of(resource("aws:sqs/queuePolicy:QueuePolicy", "p", policy=json.dumps(policy)))
    [change] = diff_plans(base, changed).changes
    assert [p.path for p in change.properties] == ["policy.Statement[0].Action"]


def test_every_type_the_program_plans_has_a_replace_rule(prod_plan: Plan, staging_plan: Plan) -> None:
    planned = {r.type for plan in (prod_plan, staging_plan) for r in plan.custom_resources()}
    missing = sorted(planned - set(replace_table()))
    assert not missing, f"add the ForceNew inputs of {missing} to platformctl/replace_on_change.json"


def test_the_plan_records_alias_urns_and_replace_on_changes() -> None:
    class Holder(pulumi.ComponentResource):
        def __init__(self, name: str, opts: pulumi.ResourceOptions) -> None:
            super().__init__("test:index:Holder", name, None, opts)
            aws.sqs.Queue("q", opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["name"]))

    def program() -> None:
        Holder("new", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]))
        aws.sqs.Queue("top", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="top-old", parent=None)]))

    plan = run_program(program, project="p", stack="s")
    by_name = {r.name: r for r in plan.resources}
    assert by_name["new"].aliases == ["urn:pulumi:s::p::pulumi:pulumi:Stack$test:index:Holder::old"]
    # parent=None means "had no parent": the URN carries no parent type.
    assert by_name["top"].aliases == ["urn:pulumi:s::p::aws:sqs/queue:Queue::top-old"]
    assert by_name["q"].replace_on_changes == ["name"]


def write(tmp_path: Path, name: str, plan: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(plan))
    return str(path)


def test_cli_exits_0_for_updates_only_and_1_for_a_replacement(tmp_path: Path) -> None:
    base = write(tmp_path, "base.json", plan_of(resource(SUBNET, "a", cidrBlock="10.0.0.0/20", tags={})))
    update = write(tmp_path, "update.json", plan_of(resource(SUBNET, "a", cidrBlock="10.0.0.0/20", tags={"x": "1"})))
    replace = write(tmp_path, "replace.json", plan_of(resource(SUBNET, "a", cidrBlock="10.0.32.0/20", tags={})))
    updated = runner.invoke(cli, ["diff", base, update])
    assert updated.exit_code == 0, updated.output
    assert "~ update" in updated.output and 'tags.x: (absent) -> "1"' in updated.output
    replaced = runner.invoke(cli, ["diff", base, replace, "--json"])
    assert replaced.exit_code == 1, replaced.output
    document = json.loads(replaced.output)
    assert document["counts"] == {"create": 0, "update": 0, "replace": 1, "delete": 0}
    assert document["changes"][0]["properties"][0] == {
        "path": "cidrBlock",
        "before": "10.0.0.0/20",
        "after": "10.0.32.0/20",
        "forcesReplacement": True,
    }


@pytest.mark.parametrize("content", [None, "not json", '{"stack": "prod"}'])
def test_cli_exits_2_on_a_missing_or_bad_plan_file(tmp_path: Path, content: str | None) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = write(tmp_path, "good.json", plan_of())
    result = runner.invoke(cli, ["diff", str(bad), good])
    assert result.exit_code == 2
    assert "bad.json" in result.output


def test_named_list_entries_compare_by_name() -> None:
    rules = [{"name": "rate", "priority": 0}, {"name": "common", "priority": 1}]
    inserted = [rules[0], {"name": "body-size", "priority": 1}, {"name": "common", "priority": 2}]
    base = plan_of(resource("aws:wafv2/webAcl:WebAcl", "waf", rules=rules))
    head = plan_of(resource("aws:wafv2/webAcl:WebAcl", "waf", rules=inserted))
    [change] = diff_plans(base, head).changes
    assert [(p.path, p.before, p.after) for p in change.properties] == [
        ("rules[name=body-size]", None, {"name": "body-size", "priority": 1}),
        ("rules[name=common].priority", 1, 2),
    ]

"""The SAM template, transformed offline and evaluated: what tests/test_template.py asserts on.

- `load()` runs the SAM transform (aws-sam-translator) on template.yaml with no AWS call: local
  CodeUri/ContentUri/DefinitionUri/ImageUri values become dummy S3/ECR locations first, and the
  translator gets a boto3 Session with only a region (and a managed-policy loader that refuses
  to ask IAM). aws-sam-translator is not a dependency of the project (cfn-lint 1.x no longer
  needs it); it comes with aws-sam-cli in the tools venv that `make lint` builds (.tools/sam).
  `load()` uses it in this interpreter when importable, else runs this file as a script with the
  tools venv's Python.
- `Resolver` evaluates the intrinsic functions of the transformed template (Ref, GetAtt, Sub,
  Join, Select, Split, If and the conditions) with fake account values, so that policies can be
  checked against concrete ARNs.
- `allows()` says whether a list of IAM statements allows an action on a resource (Allow
  without conditions, no matching Deny; `*` and `?` wildcards as IAM reads them).

Run as a script (by the tools venv's Python): `python tests/support/sam.py template.yaml` prints
{"template": <the template as parsed>, "transformed": <CloudFormation>} as JSON.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TOOLS_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"

REGION = "us-west-2"
ACCOUNT = "123456789012"
PARTITION = "aws"
STACK_NAME = "titiler-cmr-compatibility"
STACK_UUID = "0f9c2c3e-1d2b-11ef-9a4b-0a1b2c3d4e5f"
STACK_ID = f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/{STACK_UUID}"

DUMMY_BUCKET = "sam-offline-transform"
DUMMY_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/offline-transform:latest"

_LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}


class TranslatorMissing(RuntimeError):
    """Neither this interpreter nor the tools venv has aws-sam-translator."""


# ------------------------------------------------------------------ the transform


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


def replace_local_uris(template: dict) -> dict:
    """A copy whose local code/definition paths are dummy S3 locations (and local images a dummy
    ECR image), as `sam validate` does: the translator accepts no local path."""
    template = copy.deepcopy(template)
    function_globals = template.get("Globals", {}).get("Function", {})
    if _is_local(function_globals.get("CodeUri")):
        function_globals["CodeUri"] = f"s3://{DUMMY_BUCKET}/globals.zip"
    for name, resource in template.get("Resources", {}).items():
        properties = resource.setdefault("Properties", {})
        key = _LOCAL_URIS.get(resource.get("Type"))
        if key and _is_local(properties.get(key)):
            properties[key] = f"s3://{DUMMY_BUCKET}/{name}.zip"
        if resource.get("Type") == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties.setdefault("ImageUri", DUMMY_IMAGE)
    return template


class _NoManagedPolicyLookups:
    """The transform must not need IAM: every managed policy is given as an ARN or a SAM policy
    template. (The translator asks this only for a policy given by bare name.)"""

    def load(self) -> dict[str, str]:
        raise RuntimeError("the SAM transform asked IAM for managed policy names: give policies as ARNs")


def transform_in_process(path: str | Path = TEMPLATE) -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    raw = yaml_parse(Path(path).read_text())
    saved = {name: os.environ.pop(name) for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") if name in os.environ}
    try:
        session = boto3.Session(region_name=REGION)  # a region, no credentials, no profile
        translator = Translator(None, Parser(), plugins=[], boto_session=session)
        loader = _NoManagedPolicyLookups()
        transformed = translator.translate(
            sam_template=replace_local_uris(raw), parameter_values={}, get_managed_policy_map=loader.load
        )
    finally:
        os.environ.update(saved)
    return {"template": raw, "transformed": json.loads(json.dumps(transformed, default=str))}


@cache
def load(path: str = str(TEMPLATE)) -> dict[str, Any]:
    """{"template": the SAM template as parsed, "transformed": the CloudFormation template}."""
    try:
        import samtranslator  # noqa: F401
    except ImportError:
        pass
    else:
        return transform_in_process(path)
    if not TOOLS_PYTHON.exists():
        raise TranslatorMissing(
            "aws-sam-translator is not installed here and the tools venv is missing: "
            "`make lint` creates .tools/sam (aws-sam-cli and its aws-sam-translator)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    completed = subprocess.run(
        [str(TOOLS_PYTHON), __file__, path], capture_output=True, text=True, env=env, timeout=300
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the SAM transform failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout)


# ------------------------------------------------------------------ intrinsic functions


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Resolver:
    """Evaluates intrinsics of a (transformed) template with fake pseudo parameters, the
    parameters' defaults (or `overrides`) and made-up physical names for resources."""

    def __init__(self, template: dict, overrides: dict[str, str] | None = None):
        self.template = template
        self.resources: dict[str, dict] = template.get("Resources", {})
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        }
        self.parameters.update(overrides or {})
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": STACK_ID,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    # conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def active(self, logical_id: str) -> bool:
        """Whether the resource exists with these parameter values (its Condition)."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # physical names

    def _prop(self, logical_id: str, key: str) -> Any:
        value = self.resources[logical_id].get("Properties", {}).get(key)
        return None if value is None else self.resolve(value)

    def name_of(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        explicit = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::IAM::Role": "RoleName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::StepFunctions::StateMachine": "StateMachineName",
            "AWS::CloudWatch::Dashboard": "DashboardName",
            "AWS::CloudWatch::Alarm": "AlarmName",
        }.get(kind)
        name = self._prop(logical_id, explicit) if explicit else None
        return name or f"{STACK_NAME}-{logical_id}-FAKE0123"

    def ref(self, logical_id: str) -> Any:
        if logical_id in self.pseudo:
            return self.pseudo[logical_id]
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        if logical_id not in self.resources:
            raise KeyError(f"Ref to unknown {logical_id}")
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name_of(logical_id)}"
        if kind in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic", "AWS::Lambda::LayerVersion"):
            return self.get_att(logical_id, "Arn")
        if kind in ("AWS::IAM::Policy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
            return logical_id
        return self.name_of(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise KeyError(f"GetAtt of unknown {logical_id}")
        kind, name = self.resources[logical_id]["Type"], self.name_of(logical_id)
        arns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::Lambda::LayerVersion": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:layer:{name}:1",
            "AWS::CloudWatch::Alarm": f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return name
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return self.ref(logical_id)
        if kind == "AWS::StepFunctions::StateMachine" and attribute == "Name":
            return name
        raise KeyError(f"GetAtt {logical_id}.{attribute} ({kind}) is not modelled")

    # evaluation

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.resources:
                logical_id, attribute = expression.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                logical_id, attribute = value.split(".", 1) if isinstance(value, str) else value
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                if isinstance(value, str):
                    return self._sub(value, {})
                text, variables = value
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                separator, items = value
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = value
                return self.resolve(text).split(separator)
            if key == "Fn::If":
                name, then, otherwise = value
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in value)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}


# ------------------------------------------------------------------ IAM


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def statement_matches(statement: dict, action: str, resource: str) -> bool:
    actions = as_list(statement.get("Action", []))
    resources = as_list(statement.get("Resource", []))
    return any(_wildcard(a, action, case_sensitive=False) for a in actions) and any(
        _wildcard(r, resource) for r in resources
    )


def allows(statements: list[dict], action: str, resource: str) -> bool:
    """Allowed by an unconditional Allow, and not denied by any Deny. (Statements with a
    Condition never count as allowing: the checks here are about what always works.)"""
    for statement in statements:
        if statement.get("Effect") == "Deny" and statement_matches(statement, action, resource):
            return False
    return any(
        statement.get("Effect") == "Allow" and "Condition" not in statement and statement_matches(statement, action, resource)
        for statement in statements
    )


def role_statements(resolver: Resolver, role_id: str) -> list[dict]:
    """The inline statements of a role: its Policies and every AWS::IAM::Policy attached to it."""
    role = resolver.resolve(resolver.resources[role_id].get("Properties", {}))
    statements = [s for policy in role.get("Policies", []) for s in as_list(policy["PolicyDocument"]["Statement"])]
    for logical_id, resource in resolver.resources.items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and resolver.active(logical_id):
            properties = resolver.resolve(resource["Properties"])
            if resolver.name_of(role_id) in properties.get("Roles", []):
                statements += as_list(properties["PolicyDocument"]["Statement"])
    return statements


def role_of(resolver: Resolver, logical_id: str) -> str:
    """The logical id of the IAM role a function or state machine runs with."""
    role = resolver.resources[logical_id]["Properties"]["RoleArn" if "StateMachine" in resolver.resources[logical_id]["Type"] else "Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{logical_id}'s role is not a role of this template: {role}"
    target = role["Fn::GetAtt"]
    return (target.split(".")[0] if isinstance(target, str) else target[0])


if __name__ == "__main__":
    print(json.dumps(transform_in_process(sys.argv[1] if len(sys.argv) > 1 else TEMPLATE)))

"""The SAM template: it lints clean, and its SAM transform (run offline, tests/support/sam.py)
wires what the survey needs and grants each function what its code uses and no more.

The permissions each role needs are written out below (PERMISSIONS), from what the code calls:
the store (storage.py: GetObject, PutObject with IfNoneMatch/IfMatch, ListObjectsV2), Lithops
on aws_lambda/aws_s3 (HeadBucket, job objects, runtime metadata, invoke; the remote invoker
invokes workers from a worker) and auth.py (ssm:GetParameter).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import sam
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.settings import EARTHDATA_HOSTS, Settings

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "statemachine" / "survey.asl.json"
STEPS = {
    "SetupFunction": "setup",
    "LaunchFunction": "launch",
    "ProgressFunction": "progress",
    "FinalizeFunction": "finalize",
    "AggregateFunction": "aggregate",
}


def test_template_lints_clean():
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "template.yaml")], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ------------------------------------------------------------------ the transformed template


@pytest.fixture(scope="module")
def loaded() -> dict:
    try:
        return sam.load()
    except sam.TranslatorMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (CI runs `make lint` before `make test`)")
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def cfn(loaded) -> dict:
    return loaded["transformed"]


@pytest.fixture(scope="module")
def raw(loaded) -> dict:
    return loaded["template"]


@pytest.fixture(scope="module")
def r(cfn) -> sam.Resolver:
    """The transformed template with the parameters' defaults."""
    return sam.Resolver(cfn)


def props(resolver: sam.Resolver, logical_id: str) -> dict:
    return resolver.resolve(resolver.resources[logical_id]["Properties"])


def of_type(resolver: sam.Resolver, kind: str) -> list[str]:
    return [name for name, resource in resolver.resources.items() if resource["Type"] == kind and resolver.active(name)]


def env(resolver: sam.Resolver, function: str) -> dict[str, str]:
    return {k: str(v) for k, v in props(resolver, function).get("Environment", {}).get("Variables", {}).items()}


def bucket_arn(resolver: sam.Resolver) -> str:
    return resolver.get_att("SurveyBucket", "Arn")


def worker_function_name(resolver: sam.Resolver) -> str:
    """The worker function name exactly as Lithops' aws_lambda backend forms it
    (`_format_function_name`) from the launcher's settings."""
    import lithops

    from titiler_cmr_compatibility.settings import Settings

    variables = env(resolver, "LaunchFunction")
    user_key = Settings().lithops_user_id.split(":")[0][-4:].lower()  # user_id is not overridden
    runtime, memory = variables["LITHOPS_RUNTIME"], variables["LITHOPS_RUNTIME_MEMORY"]
    name_hash = hashlib.sha1(f"{runtime}-{memory}-{lithops.__version__}".encode()).hexdigest()[:10]
    return f"{variables['LITHOPS_NAMESPACE']}-lithops-worker-{user_key}-{lithops.__version__.replace('.', '')}-{name_hash}"


def parameter_arn(name: str) -> str:
    return f"arn:aws:ssm:{sam.REGION}:{sam.ACCOUNT}:parameter/{name.lstrip('/')}"


# ------------------------------------------------------------------ who may do what

RUN, CID = "2026-11", "C2036881735-POCLOUD"


def keys(resolver: sam.Resolver) -> SimpleNamespace:
    """Concrete ARNs the code touches, with the default parameters."""
    bucket = bucket_arn(resolver)
    store = f"{bucket}/{resolver.parameters['SurveyPrefix']}/{RUN}"
    collection = f"{store}/collections/{CID}"
    worker = f"arn:aws:lambda:{sam.REGION}:{sam.ACCOUNT}:function:{worker_function_name(resolver)}"
    worker_logs = f"arn:aws:logs:{sam.REGION}:{sam.ACCOUNT}:log-group:/aws/lambda/{worker_function_name(resolver)}"
    return SimpleNamespace(
        bucket=bucket,
        manifest=f"{store}/survey.json",
        marker=f"{collection}/.marker",
        result=f"{collection}/result.json",
        attempt=f"{collection}/attempts/1.json",
        history=f"{collection}/history/1.json",
        wave=f"{store}/waves/20261127T120000-a1b2c3.json",
        wave_done=f"{store}/waves/20261127T120000-a1b2c3/done/17",
        report=f"{store}/report/report.json",
        report_csv=f"{store}/report/report.csv",
        report_parquet=f"{store}/report/report.parquet",
        job=f"{bucket}/lithops.jobs/a1b2c3-0/M000/func.pickle",
        job_status=f"{bucket}/lithops.jobs/a1b2c3-0/M000/00000/status.json",
        runtime_meta=f"{bucket}/lithops.runtimes/aws_lambda/3.8.0/{sam.REGION}/{worker_function_name(resolver)}.meta.json",
        worker=worker,
        worker_log_group=worker_logs,
        worker_log_stream=f"{worker_logs}:log-stream:2026/11/27/[$LATEST]0123456789abcdef",
        queue=resolver.get_att("ResultsQueue", "Arn"),
        dead_letter_queue=resolver.get_att("ResultsDeadLetterQueue", "Arn"),
        token=parameter_arn(resolver.parameters["EarthdataTokenParameter"]),
        other_bucket_object="arn:aws:s3:::someone-elses-bucket/compat/x",
        outside_prefix=f"{bucket}/elsewhere/x.json",
        function=lambda logical_id: resolver.get_att(logical_id, "Arn"),
    )


def PERMISSIONS(k: SimpleNamespace) -> dict[str, list[tuple[str, str]]]:
    """Role (a function, the state machine, or the workers' role) -> (action, resource) it needs."""
    survey_read = [("s3:ListBucket", k.bucket)]
    return {
        # survey.setup: scan (list), survey.json and markers created with IfNoneMatch; the retry:
        # the report, each result read, copied to history/ and removed
        "SetupFunction": survey_read + [
            ("s3:PutObject", k.manifest), ("s3:PutObject", k.marker), ("s3:GetObject", k.marker),
            ("s3:GetObject", k.report), ("s3:GetObject", k.result), ("s3:PutObject", k.history),
            ("s3:DeleteObject", k.result),
        ],  # fmt: skip
        # scan; the wave's record and attempt records; Lithops: HeadBucket (ListBucket), runtime
        # metadata, job objects, invoke workers
        "LaunchFunction": survey_read + [
            ("s3:PutObject", k.wave), ("s3:PutObject", k.attempt),
            ("s3:GetObject", k.runtime_meta), ("s3:PutObject", k.job), ("s3:GetObject", k.job),
            ("lambda:InvokeFunction", k.worker),
        ],  # fmt: skip
        # lists the wave's finished calls
        "ProgressFunction": survey_read,
        # survey.finalize: markers, attempts, terminal result.json; the report and its tables
        "FinalizeFunction": survey_read + [
            ("s3:GetObject", k.marker), ("s3:GetObject", k.attempt), ("s3:GetObject", k.result),
            ("s3:PutObject", k.result), ("s3:GetObject", k.report), ("s3:PutObject", k.report),
            ("s3:PutObject", k.report_csv), ("s3:PutObject", k.report_parquet),
        ],  # fmt: skip
        # the SQS batch, result.json read, report.json compare-and-swap (GetObject + PutObject IfMatch)
        "AggregateFunction": survey_read + [
            ("sqs:ReceiveMessage", k.queue), ("sqs:DeleteMessage", k.queue),
            ("sqs:ChangeMessageVisibility", k.queue), ("sqs:GetQueueAttributes", k.queue),
            ("s3:GetObject", k.result), ("s3:GetObject", k.report), ("s3:PutObject", k.report),
        ],  # fmt: skip
        # survey.check_call and Lithops' worker: the wave's record, its call's claim and done
        # record, marker, attempts, result; job objects; the remote invoker invokes the other
        # workers; Earthdata credentials from SSM; own logs
        "LithopsWorkerRole": survey_read + [
            ("s3:GetObject", k.wave), ("s3:PutObject", k.wave_done),
            ("s3:GetObject", k.marker), ("s3:PutObject", k.attempt), ("s3:PutObject", k.result),
            ("s3:GetObject", k.job), ("s3:PutObject", k.job_status),
            ("lambda:InvokeFunction", k.worker), ("ssm:GetParameter", k.token),
            ("logs:CreateLogGroup", k.worker_log_group), ("logs:CreateLogStream", k.worker_log_stream),
            ("logs:PutLogEvents", k.worker_log_stream),
        ],  # fmt: skip
        "SurveyStateMachine": [("lambda:InvokeFunction", k.function(f)) for f in STEPS if f != "AggregateFunction"],
    }


def FORBIDDEN(k: SimpleNamespace) -> dict[str, list[tuple[str, str]]]:
    """Checks that the grants are narrow, not just sufficient."""
    everywhere = [
        ("s3:PutObject", k.other_bucket_object), ("s3:GetObject", k.other_bucket_object),
        ("s3:PutObject", k.outside_prefix), ("s3:DeleteObject", k.marker), ("s3:DeleteObject", k.report),
        ("s3:DeleteObject", k.outside_prefix), ("s3:PutBucketPolicy", k.bucket),
        ("s3:PutLifecycleConfiguration", k.bucket), ("iam:PassRole", f"arn:aws:iam::{sam.ACCOUNT}:role/x"),
        ("lambda:CreateFunction", k.worker), ("lambda:InvokeFunction", f"arn:aws:lambda:{sam.REGION}:{sam.ACCOUNT}:function:other"),
        ("ssm:GetParameter", parameter_arn("someone/else")),
    ]  # fmt: skip
    return {
        "SetupFunction": everywhere + [("s3:PutObject", k.job), ("lambda:InvokeFunction", k.worker), ("ssm:GetParameter", k.token)],
        "LaunchFunction": everywhere + [
            ("s3:PutObject", k.result), ("s3:PutObject", k.marker), ("s3:DeleteObject", k.result),
            ("s3:PutObject", k.runtime_meta), ("ssm:GetParameter", k.token), ("lambda:GetFunction", k.worker),
        ],  # fmt: skip
        "ProgressFunction": everywhere + [("s3:PutObject", k.result), ("s3:GetObject", k.job), ("s3:GetObject", k.result)],
        "FinalizeFunction": everywhere + [("s3:PutObject", k.job), ("lambda:InvokeFunction", k.worker), ("s3:DeleteObject", k.result)],
        "AggregateFunction": everywhere + [("sqs:ReceiveMessage", k.dead_letter_queue), ("s3:GetObject", k.job),
                                           ("s3:DeleteObject", k.result)],  # fmt: skip
        "LithopsWorkerRole": everywhere + [
            ("lambda:InvokeFunction", k.function("SetupFunction")), ("s3:PutObject", k.runtime_meta),
            ("sqs:ReceiveMessage", k.queue),
        ],  # fmt: skip
        "SurveyStateMachine": everywhere + [("lambda:InvokeFunction", k.function("AggregateFunction")), ("lambda:InvokeFunction", k.worker)],
    }


def statements_of(resolver: sam.Resolver, principal: str) -> list[dict]:
    role = principal if resolver.resources[principal]["Type"] == "AWS::IAM::Role" else sam.role_of(resolver, principal)
    return sam.role_statements(resolver, role)


def test_every_role_can_do_what_its_code_does(r):
    k = keys(r)
    missing = [
        f"{principal}: {action} on {resource}"
        for principal, needs in PERMISSIONS(k).items()
        for action, resource in needs
        if not sam.allows(statements_of(r, principal), action, resource)
    ]
    assert not missing, "not allowed:\n" + "\n".join(missing)


def test_no_role_can_do_more_than_that(r):
    k = keys(r)
    excess = [
        f"{principal}: {action} on {resource}"
        for principal, denied in FORBIDDEN(k).items()
        for action, resource in denied
        if sam.allows(statements_of(r, principal), action, resource)
    ]
    assert not excess, "allowed but should not be:\n" + "\n".join(excess)


# Statements allowed a bare "*" resource or a wildcard action, and why.
WILDCARD_ALLOWED = {
    ("SurveyStateMachineRole", "LogDelivery"): "CloudWatch Logs vended-log delivery actions support no resource-level permissions",
}
# AWS managed policies roles may carry, and why.
MANAGED_POLICIES_ALLOWED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": "SAM's default for every function role: write its own logs",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": "Tracing: X-Ray's trace APIs support no resource-level permissions",
}


def all_policy_statements(resolver: sam.Resolver):
    for logical_id, resource in resolver.resources.items():
        if not resolver.active(logical_id):
            continue
        properties = resolver.resolve(resource.get("Properties", {}))
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy",
                                  "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):  # fmt: skip
            documents = [properties["PolicyDocument"]]
        for document in documents:
            for statement in sam.as_list(document["Statement"]):
                yield logical_id, statement


@pytest.mark.parametrize("overrides", [{}, {"EarthdataUsernameParameter": "u", "EarthdataPasswordParameter": "p", "AlarmEmail": "a@b.c"}])
def test_no_statement_allows_every_action_or_every_resource(cfn, overrides):
    resolver = sam.Resolver(cfn, overrides)
    offending = []
    for logical_id, statement in all_policy_statements(resolver):
        assert "NotAction" not in statement and "NotResource" not in statement, (logical_id, statement)
        if statement.get("Effect") != "Allow":
            continue
        wildcard_action = any("*" in action for action in sam.as_list(statement.get("Action", [])))
        every_resource = "*" in sam.as_list(statement.get("Resource", []))
        if (wildcard_action or every_resource) and (logical_id, statement.get("Sid")) not in WILDCARD_ALLOWED:
            offending.append(f"{logical_id}: {statement}")
    assert not offending, "\n".join(offending)
    for role in of_type(resolver, "AWS::IAM::Role"):
        unexpected = set(props(resolver, role).get("ManagedPolicyArns", [])) - set(MANAGED_POLICIES_ALLOWED)
        assert not unexpected, f"{role} carries {unexpected}"


def test_earthdata_parameters_are_granted_and_named_only_when_set(cfn):
    variables = ("EARTHDATA_TOKEN_PARAMETER", "EARTHDATA_USERNAME_PARAMETER", "EARTHDATA_PASSWORD_PARAMETER")
    names = {"EarthdataTokenParameter": "ed/token", "EarthdataUsernameParameter": "ed/user", "EarthdataPasswordParameter": "ed/pass"}
    everything = sam.Resolver(cfn, names)
    worker = statements_of(everything, "LithopsWorkerRole")
    for parameter, variable in zip(names, variables):
        assert sam.allows(worker, "ssm:GetParameter", parameter_arn(names[parameter]))
        for function in STEPS:
            assert env(everything, function)[variable] == "/" + names[parameter]  # the name settings.py reads

    nothing = sam.Resolver(cfn, dict.fromkeys(names, ""))
    assert not any("ssm:GetParameter" in sam.as_list(s.get("Action")) for s in statements_of(nothing, "LithopsWorkerRole"))
    for function in STEPS:
        assert not set(variables) & set(env(nothing, function))

    token_only = sam.Resolver(cfn)  # the defaults: a token, no username/password
    assert env(token_only, "LaunchFunction")["EARTHDATA_TOKEN_PARAMETER"] == "/titiler-cmr-compat/earthdata-token"
    assert "EARTHDATA_USERNAME_PARAMETER" not in env(token_only, "LaunchFunction")
    assert not sam.allows(statements_of(token_only, "LithopsWorkerRole"), "ssm:GetParameter", parameter_arn(""))


# ------------------------------------------------------------------ functions and their settings


def test_functions_run_the_handlers_with_the_shared_layer(raw, r):
    layer = [name for name in of_type(r, "AWS::Lambda::LayerVersion")]
    assert len(layer) == 1
    for function, folder in STEPS.items():
        code = raw["Resources"][function]["Properties"]["CodeUri"]
        assert code.rstrip("/") == f"functions/{folder}"
        app = ast.parse((ROOT / code / "app.py").read_text())
        handlers = [node for node in app.body if isinstance(node, ast.FunctionDef) and node.name == "handler"]
        assert handlers and [a.arg for a in handlers[0].args.args] == ["event", "context"], function
        properties = props(r, function)
        assert properties["Handler"] == "app.handler" and properties["Runtime"] == "python3.12"
        assert properties["Layers"] == [r.ref(layer[0])]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Architectures"] == props(r, layer[0])["CompatibleArchitectures"]
    assert {f: props(r, f)["Timeout"] for f in STEPS} == {
        "SetupFunction": 900, "LaunchFunction": 900, "ProgressFunction": 300, "FinalizeFunction": 900, "AggregateFunction": 120,
    }  # fmt: skip
    layer_source = raw["Resources"]["SharedLayer"]
    assert layer_source["Properties"]["ContentUri"].rstrip("/") == "layers"
    assert layer_source["Metadata"]["BuildMethod"] == "python3.12"
    assert [layer_source["Metadata"]["BuildArchitecture"]] == props(r, layer[0])["CompatibleArchitectures"]


def test_function_environments_are_settings_the_library_reads(r):
    from titiler_cmr_compatibility.settings import Settings

    known = {name.upper() for name in Settings.model_fields}
    known |= {str(f.validation_alias).upper() for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}
    known |= {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "HOME"}
    for function in STEPS:
        variables = env(r, function)
        assert set(variables) <= known, f"{function}: {set(variables) - known} are read by nothing"
        assert variables["SURVEY_STORE"] == f"s3://{r.ref('SurveyBucket')}/compat"
        settings = Settings(**{name.lower(): value for name, value in variables.items() if name.lower() in Settings.model_fields})
        assert settings.survey_store.startswith("s3://") and settings.max_attempts == 3
    launch = env(r, "LaunchFunction")
    assert launch["LITHOPS_EXECUTION_ROLE"] == r.get_att("LithopsWorkerRole", "Arn")
    assert launch["LITHOPS_STORAGE_BUCKET"] == r.ref("SurveyBucket")
    trust = props(r, "LithopsWorkerRole")["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]


@pytest.mark.parametrize(("hosts", "expected"), [("", list(EARTHDATA_HOSTS)), ('["earthdata.nasa.gov","data.example.org"]',
                                                  ["earthdata.nasa.gov", "data.example.org"])])  # fmt: skip
def test_token_hosts_reach_the_launcher_and_so_the_workers(cfn, monkeypatch, hosts, expected):
    from titiler_cmr_compatibility.survey import worker_settings

    resolver = sam.Resolver(cfn, {"TokenHosts": hosts})
    for name, value in env(resolver, "LaunchFunction").items():
        monkeypatch.setenv(name, value)
    assert worker_settings(Settings(_env_file=None))["token_hosts"] == expected


def test_setup_stops_well_within_its_functions_timeout(r):
    """setup_timeout ends the listing and the marker writes; the requeue that follows in the same
    step (a listing and a read per requeued result) gets the rest, at least five minutes."""
    from titiler_cmr_compatibility.settings import Settings

    variables = {name.lower(): value for name, value in env(r, "SetupFunction").items()}
    settings = Settings(_env_file=None, **{k: v for k, v in variables.items() if k in Settings.model_fields})
    assert settings.setup_timeout + 300 <= props(r, "SetupFunction")["Timeout"]


@pytest.mark.parametrize("overrides", [{}, {"LithopsRuntimeMemory": "2048", "LithopsRuntimeTimeout": "600",
                                             "LithopsNamespace": "survey-b", "WorkerConcurrency": "50"}])
def test_the_runtime_is_deployed_with_the_launchers_own_settings(cfn, overrides):
    """The LithopsConfig output (the lithops.yaml `lithops runtime deploy` reads) and the
    launcher's settings come from the same parameters, so the runtime deployed is the one the
    launcher looks for: same function name (runtime, memory), timeout, namespace, bucket."""
    from titiler_cmr_compatibility.serverless import lithops_config
    from titiler_cmr_compatibility.settings import Settings

    resolver = sam.Resolver(cfn, overrides)
    deployed = json.loads(resolver.resolve(cfn["Outputs"]["LithopsConfig"]["Value"]))
    variables = {name.lower(): value for name, value in env(resolver, "LaunchFunction").items()}
    settings = Settings(_env_file=None, AWS_REGION=sam.REGION, **{k: v for k, v in variables.items() if k in Settings.model_fields})
    launcher = lithops_config(settings)
    for section in ("aws_lambda", "aws_s3", "aws"):
        assert deployed[section] == json.loads(json.dumps(launcher[section])), section
    assert {k: v for k, v in deployed["lithops"].items() if k != "log_level"} == {
        k: v for k, v in launcher["lithops"].items() if k != "log_level"}  # fmt: skip
    for name, value in overrides.items():
        assert str(value) in json.dumps(deployed), name


def test_the_committed_lithops_yaml_is_the_output_with_the_defaults(cfn):
    """lithops.yaml shows the LithopsConfig output of a default stack (the README's step 3
    replaces it with the real one): the same values, not a second set to keep in step."""
    import yaml

    resolver = sam.Resolver(cfn)
    deployed = json.loads(resolver.resolve(cfn["Outputs"]["LithopsConfig"]["Value"]))
    committed = yaml.safe_load((ROOT / "lithops.yaml").read_text())
    committed["aws_lambda"]["execution_role"] = resolver.get_att("LithopsWorkerRole", "Arn")
    committed["aws_s3"]["storage_bucket"] = resolver.ref("SurveyBucket")
    assert committed == deployed


def test_layer_requirements_are_the_tested_versions():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line and not line.startswith("#"))
    pins = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}
    requirements = [line.strip() for line in (ROOT / "layers" / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in requirements if line and not line.startswith("#")]
    assert requirements
    for line in requirements:
        name, _, version = line.partition("==")
        assert version, f"{line}: not pinned"
        assert pins.get(re.sub(r"[-_.]+", "-", name).lower()) == version, f"{line}: constraints.txt has {pins.get(name.lower())}"


# What the Lambda runtime provides besides the standard library (boto3 and its dependencies).
_RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"}
_LAYER_PROBE = textwrap.dedent(
    """
    import importlib.abc, importlib.metadata, importlib.util, json, sys
    allowed_distributions = set(json.loads(sys.argv[1]))
    allowed = set(sys.stdlib_module_names) | set(json.loads(sys.argv[2])) | {"titiler_cmr_compatibility"}
    for module, distributions in importlib.metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in allowed_distributions for d in distributions):
            allowed.add(module)
    blocked = []

    class OnlyTheLayer(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top not in allowed and not top.startswith("_"):
                blocked.append(top)
                raise ModuleNotFoundError(f"No module named {top!r} (not in the layer)", name=top)
            return None

    sys.meta_path.insert(0, OnlyTheLayer())
    problems = []
    for step in ("setup", "launch", "progress", "finalize", "aggregate"):
        spec = importlib.util.spec_from_file_location(f"{step}_app", f"functions/{step}/app.py")
        try:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except Exception as error:
            problems.append(f"{step}: {error!r}")
    # What the handlers load lazily: Lithops on aws_lambda, the report's tables, and a terminal
    # record (finalize), built from a marker.
    try:
        import lithops, lithops.serverless.backends.aws_lambda.aws_lambda, lithops.storage.backends.aws_s3.aws_s3
        from titiler_cmr_compatibility.report import export_bytes
        export_bytes({"C1-P": {"collection_concept_id": "C1-P"}}, ".parquet")
        from titiler_cmr_compatibility.survey import _result_from_marker
        from titiler_cmr_compatibility.umm import CollectionInfo
        _result_from_marker(CollectionInfo.from_marker({"concept_id": "C1-POCLOUD", "provider": "POCLOUD"}))
    except Exception as error:
        problems.append(repr(error))
    print(json.dumps({"problems": problems, "blocked": sorted(set(blocked))}))
    """
)


def _layer_probe() -> dict:
    requirements = [line.split("==")[0].strip().lower().replace("_", "-")
                    for line in (ROOT / "layers" / "requirements.txt").read_text().splitlines()
                    if "==" in line and not line.startswith("#")]  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "-c", _LAYER_PROBE, json.dumps(requirements), json.dumps(sorted(_RUNTIME_PROVIDED))],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HOME": "/tmp"}, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def layer_probe() -> dict:
    return _layer_probe()


_EARTHDATA_GAP = "No module named 'earthaccess'"


def test_the_handlers_run_with_only_the_layer(layer_probe):
    """Handlers import, and their lazy paths run, with only the layer's distributions, the
    standard library and the runtime's boto3 importable (but for the known gap below)."""
    problems = [p for p in layer_probe["problems"] if _EARTHDATA_GAP not in p]
    assert not problems, layer_probe


def test_finalize_needs_no_earthaccess(layer_probe):
    assert not layer_probe["problems"], layer_probe


# ------------------------------------------------------------------ storage, events and wiring


def test_bucket_is_private_encrypted_tls_only_and_expires_only_lithops_jobs(r):
    bucket = props(r, "SurveyBucket")
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert len(bucket["BucketName"]) <= 63 and bucket["BucketName"] == bucket["BucketName"].lower()

    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    filters = {key: rule[key] for key in ("Prefix", "TagFilters", "ObjectSizeGreaterThan", "ObjectSizeLessThan") if key in rule}
    filters.update({f"Filter.{key}": value for key, value in rule.get("Filter", {}).items()})
    assert list(filters.values()) == ["lithops.jobs/"], filters
    assert rule["Status"] == "Enabled" and 1 <= rule["ExpirationInDays"] <= 3
    assert set(rule) <= {"Id", "Status", "Prefix", "Filter", "ExpirationInDays"}, "the rule does only this"

    (policy,) = [p for p in of_type(r, "AWS::S3::BucketPolicy") if props(r, p)["Bucket"] == r.ref("SurveyBucket")]
    (deny,) = props(r, policy)["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {bucket_arn(r), f"{bucket_arn(r)}/*"}


def test_new_results_reach_the_aggregator_and_failures_the_dead_letter_queue(r):
    (notification,) = props(r, "SurveyBucket")["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == r.get_att("ResultsQueue", "Arn")
    assert notification["Event"] == "s3:ObjectCreated:*"
    rules = {rule["Name"]: rule["Value"] for rule in notification["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": "compat/", "suffix": "result.json"}

    # S3 may send: the queue policy names the bucket (and the account); the bucket waits for it
    (queue_policy,) = of_type(r, "AWS::SQS::QueuePolicy")
    policy = props(r, queue_policy)
    assert policy["Queues"] == [r.ref("ResultsQueue")]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == r.get_att("ResultsQueue", "Arn")
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == bucket_arn(r)
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == sam.ACCOUNT
    assert queue_policy in sam.as_list(r.resources["SurveyBucket"].get("DependsOn", []))
    # ...for any stack name: the name must not depend on it (upper case is legal in stack names)
    other_stack = sam.Resolver(r.template)
    other_stack.pseudo.update({"AWS::StackName": "My-Stack", "AWS::StackId": sam.STACK_ID.replace(sam.STACK_NAME, "My-Stack")})
    assert props(other_stack, "SurveyBucket")["BucketName"] == props(other_stack, "SurveyBucket")["BucketName"].lower()

    queue = props(r, "ResultsQueue")
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": r.get_att("ResultsDeadLetterQueue", "Arn"), "maxReceiveCount": 5}
    assert queue.get("SqsManagedSseEnabled") or queue.get("KmsMasterKeyId")
    assert props(r, "ResultsDeadLetterQueue").get("SqsManagedSseEnabled") or props(r, "ResultsDeadLetterQueue").get("KmsMasterKeyId")

    (mapping,) = of_type(r, "AWS::Lambda::EventSourceMapping")
    source = props(r, mapping)
    assert source["EventSourceArn"] == r.get_att("ResultsQueue", "Arn")
    assert source["FunctionName"] == r.ref("AggregateFunction")
    assert source["BatchSize"] == 1000 and source["MaximumBatchingWindowInSeconds"] == 60
    assert source["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    aggregate_timeout = props(r, "AggregateFunction")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * aggregate_timeout + source["MaximumBatchingWindowInSeconds"]

    (alarm,) = of_type(r, "AWS::CloudWatch::Alarm")
    alarm = props(r, alarm)
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": r.get_att("ResultsDeadLetterQueue", "QueueName")}]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [r.ref("AlarmTopic")]
    assert not of_type(r, "AWS::SNS::Subscription")  # no e-mail by default
    with_email = sam.Resolver(r.template, {"AlarmEmail": "ops@example.org"})
    (subscription,) = of_type(with_email, "AWS::SNS::Subscription")
    assert props(with_email, subscription) == {"TopicArn": r.ref("AlarmTopic"), "Protocol": "email", "Endpoint": "ops@example.org"}


def test_state_machine_logs_errors_and_traces(r):
    machine = props(r, "SurveyStateMachine")
    assert machine["LoggingConfiguration"]["Level"] == "ERROR"
    (destination,) = machine["LoggingConfiguration"]["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert log_group in [r.get_att(g, "Arn") for g in of_type(r, "AWS::Logs::LogGroup")]
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_every_placeholder_of_the_definition_names_a_real_resource(r):
    if not ASL.exists():
        pytest.skip(f"{ASL.relative_to(ROOT)} does not exist yet (written with the state machine)")
    definition = ASL.read_text()
    json.loads(definition)
    placeholders = set(re.findall(r"\$\{([^}]+)\}", definition))
    assert placeholders, "the definition names no resource through DefinitionSubstitutions"
    raw_substitutions = r.resources["SurveyStateMachine"]["Properties"]["DefinitionSubstitutions"]
    missing = placeholders - set(raw_substitutions)
    assert not missing, f"no DefinitionSubstitution for {sorted(missing)}"
    invoke = statements_of(r, "SurveyStateMachine")
    for name in sorted(placeholders):
        value = raw_substitutions[name]
        target = value.get("Fn::GetAtt") or value.get("Ref")
        logical_id = target.split(".")[0] if isinstance(target, str) else target[0]
        assert logical_id in r.resources, f"${{{name}}} -> {logical_id}, which is not in the template"
        if r.resources[logical_id]["Type"] == "AWS::Lambda::Function":
            assert sam.allows(invoke, "lambda:InvokeFunction", r.resolve(value)), f"the state machine may not invoke {logical_id}"


def test_outputs_name_the_bucket_machine_queues_and_report(r):
    outputs = {name: r.resolve(output["Value"]) for name, output in r.template["Outputs"].items()}
    bucket = r.ref("SurveyBucket")
    assert outputs["SurveyBucketName"] == bucket
    assert outputs["ReportKey"] == f"s3://{bucket}/compat/<run>/report/report.json"
    assert outputs["SurveyStateMachineArn"] == r.ref("SurveyStateMachine")
    assert {outputs["ResultsQueueUrl"], outputs["ResultsDeadLetterQueueUrl"]} == {r.ref("ResultsQueue"), r.ref("ResultsDeadLetterQueue")}
    assert outputs["LithopsWorkerRoleArn"] == r.get_att("LithopsWorkerRole", "Arn")


# ------------------------------------------------------------------ watching a run


def dashboard_body(resolver: sam.Resolver) -> dict:
    (dashboard,) = of_type(resolver, "AWS::CloudWatch::Dashboard")
    return json.loads(props(resolver, dashboard)["DashboardBody"])  # the JSON CloudWatch gets


_SEARCH = re.compile(r"""SEARCH\('\{"([^"]+)",([^}]*)\} MetricName="([^"]+)"'""")


def graphed(body: dict) -> list[tuple[str, str, dict[str, str | None]]]:
    """(namespace, metric name, dimensions) of every metric the widgets graph; a SEARCH's
    dimensions are its schema's names, any value (None)."""
    found = []
    for widget in body["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            if isinstance(entry[0], dict):
                for namespace, names, metric in _SEARCH.findall(entry[0]["expression"]):
                    found.append((namespace, metric, dict.fromkeys(names.split(","))))
                continue
            namespace, metric, *pairs = [part for part in entry if isinstance(part, str)]
            assert "." not in (namespace, metric), "written out, not the console's '.' shorthand"
            found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2]))))
    return found


def emitted_series(resolver: sam.Resolver, monkeypatch, capsys) -> set[tuple[str, str, tuple]]:
    """(namespace, metric, ((dimension, value), ...)) of every series the aggregator's metrics
    make, printed by the aggregator's own code with the function's environment from the template,
    for a batch with every kind of change (new rows, re-checks, reasons, failed messages)."""
    from titiler_cmr_compatibility.aggregate import AggregateStats, BatchOutcome
    from titiler_cmr_compatibility.metrics import ReportChanges, emit_batch_metrics

    for name, value in env(resolver, "AggregateFunction").items():
        if name.startswith("POWERTOOLS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    stats = AggregateStats(run=RUN, changes=ReportChanges(new=3, rechecked=1, failed_checks=1,
                                                          outcomes={"compatible": 2, "timeout": 1, "forbidden": 1}))  # fmt: skip
    capsys.readouterr()
    emit_batch_metrics(BatchOutcome(failures=["m1"], runs={RUN: stats}, messages=5))
    series = set()
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        for dimensions in directive["Dimensions"]:
            for metric in directive["Metrics"]:
                series.add((directive["Namespace"], metric["Name"], tuple(sorted((d, document[d]) for d in dimensions))))
    return series


def test_the_dashboard_graphs_what_the_aggregator_emits(r, monkeypatch, capsys):
    from titiler_cmr_compatibility import metrics

    body = dashboard_body(r)
    aggregator = env(r, "AggregateFunction")
    namespace, service = aggregator["POWERTOOLS_METRICS_NAMESPACE"], aggregator["POWERTOOLS_SERVICE_NAME"]
    assert namespace == f"titiler-cmr-compat/{sam.STACK_NAME}"  # one per stack
    emitted = emitted_series(r, monkeypatch, capsys)
    assert {name for _, name, _ in emitted} == set(metrics.RUN_METRICS + metrics.BATCH_METRICS)
    assert {ns for ns, _, _ in emitted} == {namespace}

    ours = [(metric, dimensions) for ns, metric, dimensions in graphed(body) if not ns.startswith("AWS/")]
    assert {ns for ns, _, _ in graphed(body)} == {namespace, "AWS/States", "AWS/SQS", "AWS/Lambda"}
    # every series a widget graphs is one the code prints: same name, dimensions and service...
    for metric, dimensions in ours:
        if None in dimensions.values():  # a SEARCH: any series with exactly these dimensions
            assert any(name == metric and {d for d, _ in dims} == set(dimensions) for _, name, dims in emitted), (metric, dimensions)
        else:
            assert (namespace, metric, tuple(sorted(dimensions.items()))) in emitted, (metric, dimensions)
            assert dimensions["service"] == service
    # ...and every metric it prints is on the dashboard, over time and by reason
    assert {metric for metric, _ in ours} == set(metrics.RUN_METRICS + metrics.BATCH_METRICS)
    assert (metrics.REASON_METRIC, {metrics.REASON: None, "service": None}) in ours


def test_the_dashboard_shows_the_executions_queues_and_aggregator(r):
    body = dashboard_body(r)
    metrics_of = {}
    for namespace, metric, dimensions in graphed(body):
        metrics_of.setdefault(namespace, []).append((metric, dimensions))
    machine = {"StateMachineArn": r.ref("SurveyStateMachine")}
    assert {m for m, d in metrics_of["AWS/States"] if d == machine} >= {
        "ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    assert all(d == machine for _, d in metrics_of["AWS/States"])
    queue, dead_letters = (r.get_att(q, "QueueName") for q in ("ResultsQueue", "ResultsDeadLetterQueue"))
    assert ("ApproximateNumberOfMessagesVisible", {"QueueName": queue}) in metrics_of["AWS/SQS"]
    assert ("ApproximateNumberOfMessagesVisible", {"QueueName": dead_letters}) in metrics_of["AWS/SQS"]
    function = {"FunctionName": r.ref("AggregateFunction")}
    assert {m for m, d in metrics_of["AWS/Lambda"] if d == function} >= {"Errors", "Throttles", "Invocations"}
    assert all(d == function for _, d in metrics_of["AWS/Lambda"])

    widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    (dead_letter_widget,) = [w for w in widgets if any(dead_letters in e for e in w["properties"]["metrics"])]
    assert dead_letter_widget["properties"]["annotations"] == {"alarms": [r.get_att("ResultsDeadLetterAlarm", "Arn")]}
    assert len(dead_letter_widget["properties"]["metrics"]) == 1  # an alarm annotation allows one metric
    running = [e[0] for w in widgets for e in w["properties"]["metrics"] if isinstance(e[0], dict) and e[0]["id"] == "running"]
    assert running, "executions running, from started minus ended"
    for widget in widgets:  # what an expression names is a metric or expression of its widget
        entries = widget["properties"]["metrics"]
        ids = {(e[0] if isinstance(e[0], dict) else e[-1]).get("id") for e in entries if isinstance(e[-1], dict)}
        for entry in entries:
            if isinstance(entry[0], dict) and "SEARCH" not in entry[0]["expression"]:
                assert set(re.findall(r"\b[a-z]\w*", entry[0]["expression"])) <= ids, entry
        assert widget["properties"]["region"] == sam.REGION
    # the widgets tile the 24-column grid without overlapping
    cells = [(w["x"] + i, w["y"] + j) for w in body["widgets"] for i in range(w["width"]) for j in range(w["height"])]
    assert len(cells) == len(set(cells)) and all(0 <= x < 24 for x, _ in cells)


def test_the_dashboard_is_linked_from_the_outputs(r):
    (dashboard,) = of_type(r, "AWS::CloudWatch::Dashboard")
    name = props(r, dashboard)["DashboardName"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name)
    url = r.resolve(r.template["Outputs"]["DashboardUrl"]["Value"])
    assert url == f"https://{sam.REGION}.console.aws.amazon.com/cloudwatch/home?region={sam.REGION}#dashboards:name={name}"


# ------------------------------------------------------------------ the single-check handler
# functions/check (an image function) is no longer part of the stack: the survey's checks run in
# the Lithops workers. Its handler stays until it is removed, and is still tested here.


def test_check_handler_returns_the_result_record(world, tmp_path, monkeypatch):
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ACCESS_TYPE", "external")
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    spec = importlib.util.spec_from_file_location("check_app", ROOT / "functions" / "check" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = SimpleNamespace(function_name="check", memory_limit_in_mb=2048, invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:check", aws_request_id="req-1")
    record = module.handler({"collection_concept_id": concept_id}, context)
    assert record["tiling_compatible"] is True and record["collection_concept_id"] == concept_id

#!/usr/bin/env bash
# Offline checks of the AWS deployment: the SAM template (infra/template.yaml), its nested
# monitoring template (infra/monitoring.yaml) and the state machine definition
# (statemachine/migrate.asl.json). Needs no AWS account, credentials or
# network. Runs every check, prints each result, exits non-zero if any failed.
# INFRA_TEMPLATE / INFRA_ASL override the two paths (for trying the checks on other files).
# Tools come from scripts/deps.sh (`make deps`): .venv-sam, .venv-checkov, node_modules.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

template=${INFRA_TEMPLATE:-infra/template.yaml}
asl=${INFRA_ASL:-statemachine/migrate.asl.json}
monitoring=${INFRA_MONITORING:-infra/monitoring.yaml}

export SAM_CLI_TELEMETRY=0
# sam and cfn-lint want a region; nothing here talks to it.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_REGION=${AWS_REGION:-$AWS_DEFAULT_REGION}
# No instance-metadata probing for credentials (none are needed).
export AWS_EC2_METADATA_DISABLED=true

failed=()
run() {
  local name=$1
  shift
  echo "== $name: $*"
  if "$@"; then
    echo "-- $name: ok"
  else
    echo "-- $name: FAILED"
    failed+=("$name")
  fi
  echo
}

for tool in .venv-sam/bin/sam .venv-sam/bin/cfn-lint .venv-checkov/bin/checkov node_modules/.bin/asl-validator; do
  if [ ! -x "$tool" ]; then
    echo "missing $tool: run 'make deps' (scripts/deps.sh) first" >&2
    exit 2
  fi
done
if [ ! -f "$asl" ]; then
  echo "missing $asl" >&2
  failed+=("asl-present")
fi

run sam-validate .venv-sam/bin/sam validate --lint --template "$template"
run cfn-lint .venv-sam/bin/cfn-lint -- "$template"
# The nested monitoring template (the Monitoring application): dashboard, alarms, SNS topic.
run cfn-lint-monitoring .venv-sam/bin/cfn-lint -- "$monitoring"

# cfn-lint skips its IAM action check (W3037) on SAM templates, so check every Action in every
# policy document here against the IAM action list cfn-lint ships (AWS's Service Authorization
# Reference, offline). Also check that the ASL's ${...} placeholders are exactly the state
# machine's DefinitionSubstitutions.
contract_check() {
  .venv-sam/bin/python - "$template" "$asl" "$monitoring" <<'PY'
import fnmatch
import os
import re
import sys

from cfnlint.data import AdditionalSpecs
from cfnlint.decode import decode
from cfnlint.helpers import load_resource

template_path, asl_path, monitoring_path = sys.argv[1], sys.argv[2], sys.argv[3]
template, matches = decode(template_path)
if matches:
    for m in matches:
        print(m)
    sys.exit(1)

spec = load_resource(AdditionalSpecs, "Policies.json")
problems = []
count = 0


def statements(node):
    if isinstance(node, dict):
        if "Statement" in node:
            st = node["Statement"]
            yield from (st if isinstance(st, list) else [st])
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


monitoring, matches = decode(monitoring_path)
if matches:
    for m in matches:
        print(m)
    sys.exit(1)
both = {**template.get("Resources", {}), **monitoring.get("Resources", {})}
for name, resource in both.items():
    for st in statements(resource.get("Properties", {})):
        if not isinstance(st, dict):
            continue
        for key in ("Action", "NotAction"):
            actions = st.get(key, [])
            for action in actions if isinstance(actions, list) else [actions]:
                if not isinstance(action, str) or action == "*":
                    continue
                count += 1
                service, _, verb = action.partition(":")
                svc = spec.get(service.lower())
                if svc is None:
                    problems.append(f"{name}: {action}: unknown service prefix")
                elif not fnmatch.filter(svc.get("Actions", {}).keys(), verb.lower()):
                    problems.append(f"{name}: {action}: no such IAM action")
print(f"IAM actions: {count} checked against the Service Authorization Reference")

machine = template["Resources"].get("MigrateStateMachine", {}).get("Properties", {})
subs = set(machine.get("DefinitionSubstitutions", {}))
if os.path.exists(asl_path):
    with open(asl_path) as f:
        used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", f.read()))
    for missing in sorted(used - subs):
        problems.append(f"{asl_path}: ${{{missing}}} has no DefinitionSubstitutions entry")
    for unused in sorted(subs - used):
        print(f"note: DefinitionSubstitutions {unused} is not used by {asl_path}")
    print(f"ASL placeholders: {sorted(used)}")

# Operability: every taggable resource of both templates carries the stack tag (SAM's Globals tag
# the functions; PropagateTags passes it on), every role takes the optional permissions boundary,
# and the dashboard graphs only metrics the functions print (shared/src/pipeline/metrics.rs).
TAG = "snap2dsql:stack"
UNTAGGABLE = {"AWS::KMS::Alias", "AWS::S3::BucketPolicy", "AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy",
              "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy", "AWS::Serverless::Function"}
globals_tags = template.get("Globals", {}).get("Function", {}).get("Tags", {})
if TAG not in globals_tags:
    problems.append(f"Globals.Function.Tags has no {TAG}")
tagged = 0
for path, t in ((template_path, template), (monitoring_path, monitoring)):
    for name, resource in t.get("Resources", {}).items():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind in UNTAGGABLE:
            continue
        tags = props.get("Tags")
        keys = tags.keys() if isinstance(tags, dict) else [x.get("Key") for x in tags or []]
        if TAG not in keys:
            problems.append(f"{path}: {name} ({kind}) has no {TAG} tag")
        tagged += 1
        if kind == "AWS::IAM::Role" and "PermissionsBoundary" not in props:
            problems.append(f"{path}: {name} takes no PermissionsBoundary")
print(f"tags: {tagged} taggable resources carry {TAG}")
with open("shared/src/pipeline/metrics.rs") as f:
    emitted = set(re.findall(r'pub const [A-Z_]+: &str = "([A-Za-z]+)";', f.read()))
body = monitoring["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
graphed = set(re.findall(r'MetricName=\\"([A-Za-z]+)\\"', body)) - {"ExecutionsStarted", "ExecutionsFailed"}
for name in sorted(graphed - emitted):
    problems.append(f"{monitoring_path}: the dashboard graphs {name}, which no function prints")
print(f"dashboard: graphs {sorted(graphed)}")
for line in problems:
    print(line)
sys.exit(1 if problems else 0)
PY
}
run contract contract_check

if [ -f "$asl" ]; then
  run asl-validator node_modules/.bin/asl-validator --json-path "$asl"
fi

# The checks every function skips (the five are alike; the CDK construct carries the same
# reasons as checkov metadata on each function):
#   CKV_AWS_115 no reserved concurrency: the Distributed Map's MaxConcurrency bounds the
#               invocations, and reserving would take from the account pool (10 on a new account).
#   CKV_AWS_116 no DLQ: Step Functions invokes synchronously and retries or catches errors; a DLQ
#               only serves asynchronous invocations.
#   CKV_AWS_117 VPC only where needed: fan-out joins the source's VPC when SourceSubnetIds is
#               set; S3, the RDS API and DSQL are reached with IAM auth over TLS.
#   CKV_AWS_173 AWS-managed env var encryption: the variables hold names and host names only; the
#               DSQL password is an IAM token made at run time.
function_skips=CKV_AWS_115,CKV_AWS_116,CKV_AWS_117,CKV_AWS_173
# Offline: --skip-download keeps checkov from calling its platform (no severities then).
run checkov .venv-checkov/bin/checkov --quiet --compact --skip-download \
  --framework cloudformation --skip-check "$function_skips" -f "$template"

run checkov-monitoring .venv-checkov/bin/checkov --quiet --compact --skip-download \
  --framework cloudformation -f "$monitoring"

if [ ${#failed[@]} -gt 0 ]; then
  echo "infra-check: FAILED: ${failed[*]}"
  exit 1
fi
echo "infra-check: all passed"

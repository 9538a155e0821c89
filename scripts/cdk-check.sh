#!/usr/bin/env bash
# Offline checks of the CDK construct (infra/cdk): installs its npm packages from the lockfile
# (when missing or older than it), synthesizes the example app into infra/cdk/cdk.out/ with
# `cdk synth`, type-checks, runs the tests (assertions on the synthesized template, and the parity
# test against infra/template.yaml), then cfn-lint and checkov on the synthesized template.
# Needs no AWS account, credentials or network (the npm install aside).
# Tools: .venv-sam (cfn-lint) and .venv-checkov from scripts/deps.sh (`make deps`).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
app=infra/cdk

# A fixed environment: nothing is looked up, no credentials are read.
export CDK_DEFAULT_ACCOUNT=123456789012 CDK_DEFAULT_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export CDK_DISABLE_CLI_TELEMETRY=true

for tool in .venv-sam/bin/cfn-lint .venv-checkov/bin/checkov; do
  if [ ! -x "$tool" ]; then
    echo "missing $tool: run 'make deps' (scripts/deps.sh) first" >&2
    exit 2
  fi
done
if [ ! -f "$app/node_modules/.package-lock.json" ] || [ "$app/package-lock.json" -nt "$app/node_modules/.package-lock.json" ]; then
  echo "installing npm packages of $app (npm ci)"
  (cd "$app" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || exit 2
fi

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

# The example app with placeholder bootstraps (test/fixtures/functions) and every optional part
# on (the EventBridge trigger, notifications, tracing, a boundary, the source's network), so every
# resource the construct can make is linted.
synth() {
  rm -rf "$app/cdk.out"
  (cd "$app" && node_modules/.bin/cdk synth --no-notices --quiet --output cdk.out \
    -c dsqlClusterEndpoint=abc123.dsql.us-east-1.on.aws \
    -c dsqlClusterArn=arn:aws:dsql:us-east-1:123456789012:cluster/abc123 \
    -c functionsDir=test/fixtures/functions -c enableExportCompletedTrigger=true \
    -c notificationEmail=ops@example.com -c enableTracing=true \
    -c permissionsBoundaryArn=arn:aws:iam::123456789012:policy/boundary \
    -c sourceSubnetIds=subnet-0a1b2c3d,subnet-4e5f6a7b -c sourceSecurityGroupIds=sg-0123abcd \
    -c tags=cost-center=data)
}
run cdk-synth synth
run tsc bash -c "cd $app && node_modules/.bin/tsc --noEmit -p ."
run tests bash -c "cd $app && node --import tsx --test test/construct.test.ts test/parity.test.ts"

template=$app/cdk.out/Snap2Dsql.template.json
if [ -f "$template" ]; then
  # W3005: CDK's Function and StateMachine add a DependsOn on the role they also GetAtt; harmless.
  # W1020, W8003: CfnInclude writes infra/monitoring.yaml's parameter values into its Fn::Sub
  # strings and conditions, so some Subs name no variable and some conditions are constant
  # (the notification resources' condition, when no address is given); harmless.
  run cfn-lint .venv-sam/bin/cfn-lint --ignore-checks W3005,W1020,W8003 -- "$template"
  # Offline: --skip-download keeps checkov from calling its platform.
  run checkov .venv-checkov/bin/checkov --quiet --compact --skip-download \
    --framework cloudformation -f "$template"
else
  failed+=("template-present")
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "cdk-check: FAILED: ${failed[*]}"
  exit 1
fi
echo "cdk-check: all passed"

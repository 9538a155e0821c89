// PARITY: the CDK construct deploys what infra/template.yaml (SAM) deploys. The SAM template is
// read now, at test time, so a change to either side that the other does not make fails here.
// Both are evaluated for the same inputs (the SAM parameters <-> the construct's props) and
// compared resource by resource (see parity/model.ts): every property of every function, role,
// log group, the key, the bucket, the state machine (definition and substitutions included), the
// rules, and the monitoring resources (SAM's nested infra/monitoring.yaml: dashboard, alarms,
// topic); every IAM statement as (effect, principal, action, resource, condition) lines; the tags.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { differences, modelOf, type Inputs, type Model } from './parity/model';
import { nestedNames, readSamTemplate, samTransform, type Json, type Template } from './parity/sam';
import { ACCOUNT, CLUSTER_ARN, ENDPOINT, REGION, SAM_TEMPLATE, STACK_NAME, synthesize } from './support';

// Two configurations: the defaults, and every optional part on (the trigger, a source cluster,
// notifications, tracing, a permissions boundary, the source's network).
interface Config {
  readonly trigger: boolean;
  readonly sourceClusterId: string;
  readonly email: string;
  readonly tracing: boolean;
  readonly boundary: string;
  readonly subnets: string[];
  readonly securityGroups: string[];
}
const DEFAULTS: Config = {
  trigger: false,
  sourceClusterId: '',
  email: '',
  tracing: false,
  boundary: '',
  subnets: [],
  securityGroups: [],
};
const EVERYTHING: Config = {
  trigger: true,
  sourceClusterId: 'storefront-prod',
  email: 'ops@example.com',
  tracing: true,
  boundary: `arn:aws:iam::${ACCOUNT}:policy/boundary`,
  subnets: ['subnet-0a1b2c3d', 'subnet-4e5f6a7b'],
  securityGroups: ['sg-0123abcd'],
};

const inputs = (c: Config): Inputs => ({
  parameters: {
    DsqlClusterEndpoint: ENDPOINT,
    DsqlClusterArn: CLUSTER_ARN,
    EnableExportCompletedTrigger: String(c.trigger),
    SourceClusterId: c.sourceClusterId,
    NotificationEmail: c.email,
    EnableTracing: String(c.tracing),
    PermissionsBoundaryArn: c.boundary,
    SourceSubnetIds: c.subnets.join(','),
    SourceSecurityGroupIds: c.securityGroups.join(','),
  },
  pseudo: {
    'AWS::AccountId': ACCOUNT,
    'AWS::Region': REGION,
    'AWS::StackName': STACK_NAME,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
  },
});

const samSource = (): Template => readSamTemplate(SAM_TEMPLATE);
const samModel = (template: Template, c: Config): Model => {
  const transformed = samTransform(template, path.dirname(SAM_TEMPLATE));
  const names = nestedNames(transformed);
  return modelOf(transformed, inputs(c), (id) => names[id] ?? id);
};

const synths = new Map<Config, ReturnType<typeof synthesize>>();
function cdkSynth(c: Config) {
  if (!synths.has(c)) {
    synths.set(
      c,
      synthesize({
        enableExportCompletedTrigger: c.trigger,
        sourceClusterId: c.sourceClusterId,
        notificationEmail: c.email,
        enableTracing: c.tracing,
        permissionsBoundaryArn: c.boundary || undefined,
        sourceSubnetIds: c.subnets,
        sourceSecurityGroupIds: c.securityGroups,
      }),
    );
  }
  return synths.get(c)!;
}
const cdkModel = (c: Config, template?: Template): Model => {
  const s = cdkSynth(c);
  return modelOf(template ?? s.template, inputs(c), (id) => s.names.get(id));
};

const clone = <T>(v: T): T => structuredClone(v);
type Obj = { [key: string]: Json };
const props = (t: Template, id: string) => t.Resources[id].Properties as Obj;
const inlineStatements = (t: Template, role: string) =>
  (((props(t, role).Policies as Obj[])[0].PolicyDocument as Obj).Statement as Obj[]);

for (const config of [DEFAULTS, EVERYTHING]) {
  const trigger = config.trigger;
  describe(`parity with ${config === DEFAULTS ? 'the defaults' : 'every optional part on'}`, () => {
    test('the CDK synthesis deploys what the SAM template deploys', () => {
      const sam = samModel(samSource(), config);
      const cdk = cdkModel(config);
      assert.deepEqual(differences(sam, cdk), []);
    });

    test('the comparison covers every resource kind the SAM template deploys', () => {
      const sam = samModel(samSource(), config);
      const kinds: Record<string, number> = {};
      for (const entry of Object.values(sam)) kinds[entry.type] = (kinds[entry.type] ?? 0) + 1;
      assert.deepEqual(kinds, {
        'AWS::KMS::Key': 1,
        'AWS::KMS::Alias': 1,
        'AWS::S3::Bucket': 1,
        'AWS::S3::BucketPolicy': 1,
        'AWS::IAM::Role': trigger ? 8 : 7,
        'AWS::Logs::LogGroup': 6,
        'AWS::Lambda::Function': 5,
        'AWS::StepFunctions::StateMachine': 1,
        'AWS::CloudWatch::Dashboard': 1,
        'AWS::CloudWatch::Alarm': 13,
        ...(trigger ? { 'AWS::IAM::ManagedPolicy': 1 } : {}),
        ...(trigger ? { 'AWS::Events::Rule': 3, 'AWS::SNS::Topic': 1, 'AWS::SNS::Subscription': 1, 'AWS::SNS::TopicPolicy': 1 } : {}),
      });
      // Every role has the boundary when one is given; every taggable resource the stack tag.
      for (const [name, entry] of Object.entries(sam)) {
        const p = (entry.value as Obj).Properties as Obj;
        if (entry.type === 'AWS::IAM::Role') {
          assert.equal(p.PermissionsBoundary, trigger ? config.boundary : undefined, name);
        }
        if (!['AWS::KMS::Alias', 'AWS::S3::BucketPolicy', 'AWS::SNS::Subscription', 'AWS::SNS::TopicPolicy', 'AWS::IAM::ManagedPolicy'].includes(entry.type)) {
          assert.equal((p.Tags as Obj | undefined)?.['snap2dsql:stack'], STACK_NAME, name);
        }
      }
      const fanOut = (sam.FanOutFunction.value as Obj).Properties as Obj;
      assert.equal(fanOut.VpcConfig === undefined, !trigger);
      if (trigger) {
        const fanOutRole = (sam.FanOutRole.value as Obj).Properties as Obj;
        // Interfaces are made only in the given subnets and groups; only Describe* is on "*".
        const permissions = fanOutRole.Permissions as string[];
        for (const id of [...config.subnets.map((s) => `subnet/${s}`), ...config.securityGroups.map((g) => `security-group/${g}`)]) {
          assert.ok(permissions.includes(`Allow ec2:CreateNetworkInterface on arn:*:ec2:*:*:${id}`), id);
        }
        assert.deepEqual(permissions.filter((p) => p.startsWith('Allow ec2:') && p.endsWith(' on *')), [
          'Allow ec2:DescribeNetworkInterfaces on *',
          'Allow ec2:DescribeSubnets on *',
        ]);
        assert.deepEqual(((sam.VerifyRole.value as Obj).Properties as Obj).ManagedPolicyArns, ['{{TracingPolicy}}']);
        assert.ok(JSON.stringify((sam.TracingPolicy.value as Obj).Properties).includes('xray:PutTraceSegments'));
      }
      // The statements are really there to compare (one line per action and resource).
      const loadChunk = (sam.LoadChunkRole.value as Obj).Properties as Obj;
      assert.ok((loadChunk.Permissions as string[]).includes(`Allow dsql:DbConnectAdmin on ${CLUSTER_ARN}`));
      const machine = (sam.MigrateStateMachine.value as Obj).Properties as Obj;
      assert.equal((machine.DefinitionSubstitutions as Obj).LoadChunkFunctionArn, '{{LoadChunkFunction.Arn}}');
      assert.equal(((machine.Definition as Obj).StartAt as string).length > 0, true);
    });
  });
}

describe('a deliberate change on one side fails the comparison', () => {
  const expectDifference = (sam: Template, pattern: RegExp, config = DEFAULTS) => {
    const diffs = differences(samModel(sam, config), cdkModel(config));
    assert.ok(
      diffs.some((d) => pattern.test(d)),
      `expected a difference matching ${pattern}, got:\n${diffs.join('\n')}`,
    );
  };

  test('an IAM action added to a role in SAM', () => {
    const sam = clone(samSource());
    const dsql = inlineStatements(sam, 'LoadChunkRole').find((s) => s.Sid === 'DsqlAdmin')!;
    dsql.Action = ['dsql:DbConnectAdmin', 'dsql:DbConnect'];
    expectDifference(sam, /^LoadChunkRole\.Properties\.Permissions: only in SAM: Allow dsql:DbConnect on /);
  });

  test('a statement resource widened in SAM', () => {
    const sam = clone(samSource());
    const read = inlineStatements(sam, 'FanOutRole').find((s) => s.Sid === 'WriteRunArtefacts')!;
    read.Resource = { 'Fn::Sub': '${ExportBucket.Arn}/*' };
    expectDifference(sam, /^FanOutRole\.Properties\.Permissions: only in SAM: Allow s3:PutObject on \{\{ExportBucket\.Arn\}\}\/\*$/);
    expectDifference(sam, /^FanOutRole\.Properties\.Permissions: only in CDK: Allow s3:PutObject on \{\{ExportBucket\.Arn\}\}\/runs\/\*$/);
  });

  test("a function's memory, an environment variable, the runtime", () => {
    const sam = clone(samSource());
    props(sam, 'VerifyFunction').MemorySize = 3008;
    ((props(sam, 'FanOutFunction').Environment as Obj).Variables as Obj).RUST_LOG = 'debug';
    ((sam.Globals as Obj).Function as Obj).Runtime = 'provided.al2';
    expectDifference(sam, /^VerifyFunction\.Properties\.MemorySize: SAM "3008", CDK "1024"$/);
    expectDifference(sam, /^FanOutFunction\.Properties\.Environment\.Variables\.RUST_LOG: SAM "debug", CDK "info"$/);
    expectDifference(sam, /^SnapshotFunction\.Properties\.Runtime: SAM "provided.al2", CDK "provided.al2023"$/);
  });

  test('a definition substitution removed, a resource added, the rule pattern changed', () => {
    const sam = clone(samSource());
    delete (props(sam, 'MigrateStateMachine').DefinitionSubstitutions as Obj).ExportBucket;
    sam.Resources.Notifications = { Type: 'AWS::SNS::Topic', Properties: {} };
    ((props(sam, 'ExportCompletedRule').EventPattern as Obj).detail as Obj).EventID = ['RDS-EVENT-0164', 'RDS-EVENT-0159'];
    expectDifference(sam, /^MigrateStateMachine\.Properties\.DefinitionSubstitutions\.ExportBucket: SAM undefined/, EVERYTHING);
    expectDifference(sam, /^Notifications: only in the SAM template \(AWS::SNS::Topic\)$/, EVERYTHING);
    expectDifference(sam, /^ExportCompletedRule\.Properties\.EventPattern\.detail\.EventID: SAM has 2 items/, EVERYTHING);
  });

  test("a role's boundary, the functions' tracing and a tag dropped in SAM", () => {
    const sam = clone(samSource());
    delete props(sam, 'VerifyRole').PermissionsBoundary;
    delete ((sam.Globals as Obj).Function as Obj).Tracing;
    props(sam, 'ExportBucket').Tags = [];
    expectDifference(sam, /^VerifyRole\.Properties\.PermissionsBoundary: SAM undefined, CDK "arn:aws:iam::123456789012:policy\/boundary"$/, EVERYTHING);
    expectDifference(sam, /^LoadChunkFunction\.Properties\.TracingConfig: SAM undefined/, EVERYTHING);
    expectDifference(sam, /^ExportBucket\.Properties\.Tags\.snap2dsql:stack: SAM undefined/, EVERYTHING);
  });

  test('a statement dropped from the CDK synthesis', () => {
    const cdk = clone(cdkSynth(DEFAULTS).template);
    const roleId = [...cdkSynth(DEFAULTS).names].find(([, name]) => name === 'SnapshotRole')![0];
    const statements = inlineStatements(cdk, roleId);
    statements.splice(statements.findIndex((s) => s.Sid === 'PassExportRole'), 1);
    const diffs = differences(samModel(samSource(), DEFAULTS), cdkModel(DEFAULTS, cdk));
    assert.deepEqual(diffs, ['SnapshotRole.Properties.Permissions: only in SAM: Allow iam:PassRole on {{ExportRole.Arn}}']);
  });

  test('a SAM feature the comparison does not know is refused, not ignored', () => {
    const sam = clone(samSource());
    props(sam, 'LoadChunkFunction').ReservedConcurrentExecutions = 10;
    assert.throws(() => samModel(sam, DEFAULTS), /does not know AWS::Serverless::Function property ReservedConcurrentExecutions/);
  });
});

// PARITY: the CDK construct deploys what infra/template.yaml (SAM) deploys. The SAM template is
// read now, at test time, so a change to either side that the other does not make fails here.
// Both are evaluated for the same inputs (the SAM parameters <-> the construct's props) and
// compared resource by resource (see parity/model.ts): every property of every function, role,
// log group, the key, the bucket, the state machine (definition and substitutions included) and
// the rule; every IAM statement as (effect, principal, action, resource, condition) lines.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { differences, modelOf, type Inputs, type Model } from './parity/model';
import { readSamTemplate, samTransform, type Json, type Template } from './parity/sam';
import { ACCOUNT, CLUSTER_ARN, ENDPOINT, REGION, SAM_TEMPLATE, STACK_NAME, synthesize } from './support';

// Two configurations: the defaults, and the optional parts on (the trigger, a source cluster).
interface Config {
  readonly trigger: boolean;
  readonly sourceClusterId: string;
}
const DEFAULTS: Config = { trigger: false, sourceClusterId: '' };
const EVERYTHING: Config = { trigger: true, sourceClusterId: 'storefront-prod' };

const inputs = (c: Config): Inputs => ({
  parameters: {
    DsqlClusterEndpoint: ENDPOINT,
    DsqlClusterArn: CLUSTER_ARN,
    EnableExportCompletedTrigger: String(c.trigger),
    SourceClusterId: c.sourceClusterId,
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
const samModel = (template: Template, c: Config): Model =>
  modelOf(samTransform(template, path.dirname(SAM_TEMPLATE)), inputs(c), (id) => id);

const synths = new Map<Config, ReturnType<typeof synthesize>>();
function cdkSynth(c: Config) {
  if (!synths.has(c)) {
    synths.set(c, synthesize({ enableExportCompletedTrigger: c.trigger, sourceClusterId: c.sourceClusterId }));
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
  describe(`parity with ${config === DEFAULTS ? 'the defaults' : 'the trigger on and a source cluster'}`, () => {
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
        ...(trigger ? { 'AWS::Events::Rule': 1 } : {}),
      });
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
    props(sam, 'LoadChunkFunction').Tracing = 'Active';
    assert.throws(() => samModel(sam, DEFAULTS), /does not know AWS::Serverless::Function property Tracing/);
  });
});

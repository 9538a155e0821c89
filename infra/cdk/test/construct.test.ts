// Assertions on the synthesized template (aws-cdk-lib/assertions), independent of the SAM
// template: what the construct must deploy whatever SAM says, and what its props change.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { MIGRATE_ASL_PATH, Snap2DsqlMigration } from '../lib';
import { CLUSTER_ARN, ENDPOINT, FIXTURE_FUNCTIONS, synthesize } from './support';

type Obj = Record<string, unknown>;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

describe('Snap2DsqlMigration with its defaults', () => {
  const { stack } = synthesize();
  const template = Template.fromStack(stack);

  test('five arm64 provided.al2023 functions with the SAM sizes, each with its own role and log group', () => {
    template.resourceCountIs('AWS::Lambda::Function', 5);
    const expected: Record<string, [number, number]> = {
      snapshot: [512, 60],
      'poll-export': [512, 60],
      'fan-out': [1024, 900],
      'load-chunk': [2048, 900],
      verify: [1024, 900],
    };
    for (const [name, [memory, timeout]] of Object.entries(expected)) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `snap2dsql-test-${name}`,
        Runtime: 'provided.al2023',
        Architectures: ['arm64'],
        Handler: 'bootstrap',
        MemorySize: memory,
        Timeout: timeout,
        LoggingConfig: { LogFormat: 'JSON', LogGroup: Match.anyValue() },
      });
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: `/aws/lambda/snap2dsql-test-${name}`,
        RetentionInDays: 30,
        KmsKeyId: Match.anyValue(),
      });
    }
    const roles = Object.values(template.findResources('AWS::Lambda::Function')).map((f) =>
      JSON.stringify((f as { Properties: Obj }).Properties.Role),
    );
    assert.equal(new Set(roles).size, 5);
  });

  test("every ${placeholder} of the ASL has a definition substitution, and nothing else does", () => {
    const placeholders = [...fs.readFileSync(MIGRATE_ASL_PATH, 'utf8').matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
    const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    assert.equal(machines.length, 1);
    const subs = (machines[0] as { Properties: Obj }).Properties.DefinitionSubstitutions as Obj;
    assert.deepEqual(Object.keys(subs).sort(), [...new Set(placeholders)].sort());
    assert.equal(subs.LoadConcurrency, '8');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'snap2dsql-test-migrate',
      StateMachineType: 'STANDARD',
      DefinitionString: fs.readFileSync(MIGRATE_ASL_PATH, 'utf8'),
      LoggingConfiguration: { Level: 'ERROR', IncludeExecutionData: false, Destinations: Match.anyValue() },
    });
  });

  test('the key rotates, the bucket is KMS-encrypted, private, versioned, TLS only; both are retained', () => {
    template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() } },
          ],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        VersioningConfiguration: { Status: 'Enabled' },
      },
      DeletionPolicy: 'Retain',
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  test('least privilege: no managed policies, no "*" action, "*" resources only where AWS requires them', () => {
    for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
      assert.equal((role as { Properties: Obj }).Properties.ManagedPolicyArns, undefined);
    }
    // Identity policies: inline in the roles, and AWS::IAM::Policy resources.
    const statements: Obj[] = [];
    for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
      for (const p of list((role as { Properties: Obj }).Properties.Policies ?? [])) {
        statements.push(...(((p as Obj).PolicyDocument as Obj).Statement as Obj[]));
      }
    }
    for (const p of Object.values(template.findResources('AWS::IAM::Policy'))) {
      statements.push(...((((p as { Properties: Obj }).Properties.PolicyDocument as Obj).Statement as Obj[])));
    }
    const starAllowed = new Set([
      'rds:DescribeExportTasks',
      'logs:CreateLogDelivery',
      'logs:GetLogDelivery',
      'logs:UpdateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:DescribeResourcePolicies',
      'logs:DescribeLogGroups',
    ]);
    assert.ok(statements.length > 20);
    for (const st of statements) {
      const actions = list(st.Action) as string[];
      assert.ok(!actions.includes('*'), `action "*" in ${JSON.stringify(st)}`);
      if (list(st.Resource).includes('*')) {
        for (const a of actions) assert.ok(starAllowed.has(a), `${a} on "*"`);
      }
    }
  });

  test('no EventBridge rule deployed unless asked for: the notification rules are under a false condition', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as { Condition?: string }[];
    assert.equal(rules.length, 2);
    for (const rule of rules) {
      const condition = template.toJSON().Conditions[rule.Condition!];
      assert.deepEqual(condition, { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
    }
  });

  test('each function carries the four justified checkov skips', () => {
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
      const skips = ((fn as { Metadata: Obj }).Metadata.checkov as { skip: { id: string; comment: string }[] }).skip;
      assert.deepEqual(skips.map((s) => s.id).sort(), ['CKV_AWS_115', 'CKV_AWS_116', 'CKV_AWS_117', 'CKV_AWS_173']);
      for (const s of skips) assert.ok(s.comment.length > 20);
    }
  });
});

describe('Snap2DsqlMigration props', () => {
  test('the trigger adds the rule, its role may start only this state machine', () => {
    const { stack } = synthesize({ enableExportCompletedTrigger: true });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Events::Rule', 3);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.rds'], 'detail-type': ['RDS DB Cluster Snapshot Event'], detail: { EventID: ['RDS-EVENT-0164'] } },
      Targets: [Match.objectLike({ InputTransformer: Match.objectLike({ InputPathsMap: { 'detail-SourceArn': '$.detail.SourceArn' } }) })],
    });
    const machineId = Object.keys(template.findResources('AWS::StepFunctions::StateMachine'))[0];
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [Match.objectLike({ Action: 'states:StartExecution', Resource: { Ref: machineId } })] },
    });
  });

  test('knobs reach the environment, the substitutions and the log groups', () => {
    const { stack } = synthesize({
      loadConcurrency: 32,
      loadConnections: 2,
      sourceClusterId: 'storefront-prod',
      mappingObjectKey: 'm/mapping.toml',
      exportPrefix: 'snap/exports',
      logRetention: RetentionDays.ONE_WEEK,
      namePrefix: 'mig',
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'mig-load-chunk',
      Environment: { Variables: Match.objectLike({ LOAD_CONNECTIONS: '2', TARGET_URL: `postgres://admin@${ENDPOINT}/postgres` }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'mig-snapshot',
      Environment: { Variables: Match.objectLike({ SOURCE_CLUSTER_ID: 'storefront-prod', EXPORT_PREFIX: 'snap/exports' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'mig-fan-out',
      Environment: { Variables: Match.objectLike({ MAPPING_KEY: 'm/mapping.toml' }) },
    });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'mig-migrate',
      DefinitionSubstitutions: Match.objectLike({ LoadConcurrency: '32' }),
    });
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  test('operability: metrics namespace, dashboard, alarms, notifications, tracing, tags, boundary, network', () => {
    const boundary = 'arn:aws:iam::123456789012:policy/boundary';
    const { stack } = synthesize({
      metricsNamespace: 'ops/metrics',
      notificationEmail: 'ops@example.com',
      enableTracing: true,
      permissionsBoundaryArn: boundary,
      sourceSubnetIds: ['subnet-0a1b2c3d'],
      sourceSecurityGroupIds: ['sg-0123abcd'],
    });
    const template = Template.fromStack(stack);
    const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties?: Obj }> };
    for (const name of ['load-chunk', 'verify']) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `snap2dsql-test-${name}`,
        Environment: { Variables: Match.objectLike({ METRICS_NAMESPACE: 'ops/metrics' }) },
      });
    }
    template.allResourcesProperties('AWS::Lambda::Function', { TracingConfig: { Mode: 'Active' } });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { TracingConfiguration: { Enabled: true } });
    // Only fan-out (the source's catalog) joins the network, and only its role may make ENIs.
    const inVpc = Object.values(json.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties!.VpcConfig);
    assert.deepEqual(inVpc.map((r) => r.Properties!.FunctionName), ['snap2dsql-test-fan-out']);
    assert.deepEqual(inVpc[0].Properties!.VpcConfig, { SubnetIds: ['subnet-0a1b2c3d'], SecurityGroupIds: ['sg-0123abcd'] });
    // The ENI actions are the role's own inline policy (Lambda checks them at CreateFunction),
    // interfaces created only in the given subnet and security group.
    const withNetwork = Object.entries(json.Resources).filter(
      ([, r]) => r.Type === 'AWS::IAM::Role' && ((r.Properties!.Policies ?? []) as Obj[]).some((p) => p.PolicyName === 'source-network'),
    );
    assert.deepEqual(withNetwork.map(([id]) => /FanOutRole/.test(id)), [true]);
    const network = ((withNetwork[0][1].Properties!.Policies as Obj[]).find((p) => p.PolicyName === 'source-network')!
      .PolicyDocument as Obj).Statement as Obj[];
    const create = network.find((st) => st.Action === 'ec2:CreateNetworkInterface')!;
    assert.ok(list(create.Resource).includes('arn:*:ec2:*:*:subnet/subnet-0a1b2c3d'));
    assert.ok(list(create.Resource).includes('arn:*:ec2:*:*:security-group/sg-0123abcd'));
    assert.equal(list(create.Resource).length, 3);
    template.allResourcesProperties('AWS::IAM::Role', { PermissionsBoundary: boundary });
    template.resourceCountIs('AWS::CloudWatch::Alarm', 13);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.states'], detail: { status: ['SUCCEEDED'] } },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.states'], detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'] } },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/States',
      MetricName: 'ExecutionsTimedOut',
      AlarmName: { 'Fn::Sub': 'snap2dsql-test-executions-timed-out' },
    });
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]);
    // The namespace is quoted in the SEARCH expressions (escaped twice: JSON text in JSON).
    assert.match(body, /\{\\+"ops\/metrics\\+",Migration\}/);
    // Every resource that takes tags carries the stack tag.
    const untaggable = ['AWS::KMS::Alias', 'AWS::S3::BucketPolicy', 'AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy', 'AWS::SNS::Subscription', 'AWS::SNS::TopicPolicy', 'AWS::CDK::Metadata'];
    for (const [id, r] of Object.entries(json.Resources)) {
      if (untaggable.includes(r.Type)) continue;
      const tags = (r.Properties?.Tags ?? []) as { Key: string; Value: unknown }[];
      assert.ok(tags.some((t) => t.Key === 'snap2dsql:stack'), `${id} (${r.Type}) is not tagged`);
    }
  });

  test('two migrations in one stack, told apart by namePrefix', () => {
    const app = new App();
    const stack = new Stack(app, 'Two', { env: { account: '123456789012', region: 'us-east-1' } });
    const common = { dsqlClusterEndpoint: ENDPOINT, dsqlClusterArn: CLUSTER_ARN, functionsDir: FIXTURE_FUNCTIONS };
    new Snap2DsqlMigration(stack, 'Orders', { ...common, namePrefix: 'orders' });
    new Snap2DsqlMigration(stack, 'Catalog', { ...common, namePrefix: 'catalog' });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::Function', 10);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: 'catalog-migrate' });
  });

  test('bad inputs are refused at synthesis, naming the prop', () => {
    assert.throws(() => synthesize({ dsqlClusterEndpoint: 'abc.example.com' }), /dsqlClusterEndpoint "abc.example.com"/);
    assert.throws(() => synthesize({ dsqlClusterArn: 'arn:aws:dsql:us-east-1:1:cluster/x' }), /dsqlClusterArn/);
    assert.throws(() => synthesize({ loadConcurrency: 0 }), /loadConcurrency 0 is not an integer from 1 to 9999/);
    assert.throws(() => synthesize({ exportPrefix: '/exports' }), /exportPrefix/);
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'snap2dsql-cdk-'));
    assert.throws(() => synthesize({ functionsDir: empty }), /snapshot\/bootstrap is missing: build the functions/);
  });
});
